# `cmake --install` puts the client library, its public headers and a CMake package config in the
# prefix, so that a downstream project does find_package(GpuBridge) and links GpuBridge::client.
include(CMakePackageConfigHelpers)

install(TARGETS bridge_client EXPORT GpuBridgeTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES
  libbridge/include/bridge/actor.hpp
  libbridge/include/bridge/client.hpp
  libbridge/include/bridge/export.hpp
  libbridge/include/bridge/fleet.hpp
  libbridge/include/bridge/job.hpp
  libbridge/include/bridge/status.hpp
  libbridge/include/bridge/stream.hpp
  libbridge/include/bridge/tensor.hpp
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/bridge)
install(EXPORT GpuBridgeTargets NAMESPACE GpuBridge:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/GpuBridge)
configure_package_config_file(cmake/GpuBridgeConfig.cmake.in
  "${CMAKE_CURRENT_BINARY_DIR}/GpuBridgeConfig.cmake"
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/GpuBridge)
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/GpuBridgeConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/GpuBridgeConfig.cmake" "${CMAKE_CURRENT_BINARY_DIR}/GpuBridgeConfigVersion.cmake"
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/GpuBridge)

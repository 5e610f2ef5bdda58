# Every dependency comes from a Debian package (scripts/install-deps); nothing is downloaded here.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(cppzmq REQUIRED)            # cppzmq-dev, brings libzmq
find_package(FlatBuffers REQUIRED)       # libflatbuffers-dev + flatbuffers-compiler
find_package(TBB REQUIRED)               # libtbb-dev
find_package(yaml-cpp REQUIRED)          # libyaml-cpp-dev
find_package(spdlog REQUIRED)            # libspdlog-dev
find_package(CLI11 REQUIRED)             # libcli11-dev (every program's flags)
find_package(nlohmann_json REQUIRED)     # nlohmann-json3-dev (every JSON document)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)   # libhiredis-dev
pkg_check_modules(CPP_HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)  # libcpp-httplib-dev (metrics endpoint)

find_program(FLATC_EXECUTABLE flatc REQUIRED)

if(NOT TARGET yaml-cpp::yaml-cpp)
  add_library(yaml-cpp::yaml-cpp ALIAS yaml-cpp)
endif()

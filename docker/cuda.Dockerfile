# GPU worker image: bridge-worker with the CUDA plugin, on NVIDIA's CUDA images for Ubuntu 24.04.
# The tags match the CUDA 13.0 toolkit the plugin is built and tested with (sm_80, sm_90). A
# `runtime` base gives cudart, cuBLAS and the driver hooks that the NVIDIA container toolkit mounts;
# it is far smaller than `devel`. Needs the NVIDIA container toolkit on the host.
#   docker build --network host -f docker/cuda.Dockerfile -t gpubridge-cuda:latest .
# Not built or run in this repository's CI (no registry can be reached there, and there is no GPU).
FROM nvidia/cuda:13.0.1-devel-ubuntu24.04 AS build
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      cmake ninja-build pkg-config g++ \
      libzmq3-dev cppzmq-dev libflatbuffers-dev flatbuffers-compiler \
      libtbb-dev libhiredis-dev libyaml-cpp-dev libspdlog-dev libcpp-httplib-dev libcli11-dev nlohmann-json3-dev \
      libjemalloc-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY schemas schemas
COPY libbridge libbridge
COPY broker broker
COPY worker worker
COPY loadtest loadtest
COPY bridgectl bridgectl
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBRIDGE_TESTS=OFF -DBRIDGE_CUDA=ON -DBRIDGE_PYTHON=OFF \
 && cmake --build build --target bridge-worker bridge_cuda bridgectl bridge_client \
 && cmake --install build --prefix /opt/gpubridge

FROM nvidia/cuda:13.0.1-runtime-ubuntu24.04 AS runtime
# The -dev packages bring exactly the runtime libraries the build linked, whatever their sonames
# on this Ubuntu release; the headers they add are small next to CUDA's libraries.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libzmq3-dev libtbb-dev libhiredis-dev libyaml-cpp-dev libspdlog-dev libcpp-httplib-dev libjemalloc2 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/gpubridge /opt/gpubridge
ENV PATH=/opt/gpubridge/bin:$PATH LD_LIBRARY_PATH=/opt/gpubridge/lib
WORKDIR /etc/gpubridge
CMD ["bridge-worker", "--help"]

# Redis for the fleet, from Debian's package (no image registry is needed to build it).
#   docker build --network host -f docker/redis.Dockerfile -t gpubridge-redis:latest docker
FROM debian:bookworm-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* && mkdir -p /data
WORKDIR /data
CMD ["redis-server", "--bind", "127.0.0.1", "--dir", "/data"]

# Redis with AOF persistence in /data, from Debian's redis-server. Build from the repo root:
#   docker build -f deploy/redis.Dockerfile -t notigate-redis .
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && mkdir -p /data && chown redis:redis /data
COPY deploy/redis.conf /etc/redis/notigate.conf
VOLUME /data
USER redis
WORKDIR /data
EXPOSE 6379
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=5 CMD redis-cli ping | grep -q PONG
CMD ["redis-server", "/etc/redis/notigate.conf"]

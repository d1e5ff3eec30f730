# Redis for the tests and the local compose fleet: Debian 12's redis-server (7.0), run as
# the package's redis user. The Helm chart defaults to the public redis image instead.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/*
USER redis
WORKDIR /var/lib/redis
ENTRYPOINT ["/usr/bin/redis-server"]

# fetchfleet images: one build stage makes the three binaries on Debian 12; each
# final stage ships one of them on debian:bookworm-slim with only the shared
# libraries it links, as a non-root user.
#
#   docker build --target coordinator -t fetchfleet-coordinator .
#   docker build --target worker      -t fetchfleet-worker .
#   docker build --target fetchctl    -t fetchctl .
#
# (scripts/docker-images.sh builds all three and tags them.)

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libcurl4-openssl-dev libabsl-dev nlohmann-json3-dev libhiredis-dev libsqlite3-dev libssl-dev \
      prometheus-cpp-dev libcivetweb-dev libgtest-dev libgmock-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only the three binaries (CMake configures the tests too: GTest is needed for
# that, not built). Stripped: debug info is for the development build.
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j "$(nproc)" \
      --target fetchfleet-coordinator fetchfleet-worker fetchctl \
 && mkdir /out \
 && for b in fetchfleet-coordinator fetchfleet-worker fetchctl; do \
      strip -o "/out/$b" "/build/bin/$b"; done \
 && mkdir /out/data

# The runtime: the libraries the binaries link (their Debian 12 packages) and
# CA certificates for HTTPS upstreams; nothing else.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libabsl20220623 libcivetweb1 libcurl4 libgrpc++1.51 libgrpc29 \
      libhiredis0.14 libsqlite3-0 libprometheus-cpp-core1.0 libprotobuf32 libssl3 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/* \
 && echo 'fetchfleet:x:65532:65532:fetchfleet:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'fetchfleet:x:65532:' >> /etc/group
ARG VERSION=0.11.0
ARG REVISION=unknown
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.vendor="fetchfleet" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
# Numeric, so Kubernetes' runAsNonRoot can check it without a passwd lookup.
USER 65532:65532
WORKDIR /tmp

FROM runtime AS coordinator
LABEL org.opencontainers.image.title="fetchfleet-coordinator" \
      org.opencontainers.image.description="fetchfleet coordinator: accepts jobs, leases work to workers, streams results"
COPY --from=build /out/fetchfleet-coordinator /usr/local/bin/fetchfleet-coordinator
# The job store's directory (--data-dir), owned by the runtime user so that a volume
# mounted there (compose's named volume copies it) is writable.
COPY --from=build --chown=65532:65532 /out/data /var/lib/fetchfleet
EXPOSE 7070 9090
ENTRYPOINT ["/usr/local/bin/fetchfleet-coordinator"]

FROM runtime AS worker
LABEL org.opencontainers.image.title="fetchfleet-worker" \
      org.opencontainers.image.description="fetchfleet worker: fetches leased requests under the fleet-wide rate limit"
COPY --from=build /out/fetchfleet-worker /usr/local/bin/fetchfleet-worker
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/fetchfleet-worker"]

FROM runtime AS fetchctl
LABEL org.opencontainers.image.title="fetchctl" \
      org.opencontainers.image.description="fetchctl: the fetchfleet command line (submit, watch, status, limits, breakers, top)"
COPY --from=build /out/fetchctl /usr/local/bin/fetchctl
ENTRYPOINT ["/usr/local/bin/fetchctl"]

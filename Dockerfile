# syntax=docker/dockerfile:1
#
# meta-messaging-exporter container image.
#
#   docker build -t meta-messaging-exporter .
#   docker run --rm -p 9867:9867 meta-messaging-exporter --demo
#   docker run --rm -p 9867:9867 --read-only \
#     -v "$PWD/config.yaml:/etc/meta-messaging-exporter/config.yaml:ro" \
#     -e META_ACCESS_TOKEN meta-messaging-exporter
#
# Config: /etc/meta-messaging-exporter/config.yaml (META_EXPORTER_CONFIG_FILE; mount it, e.g.
# from a Kubernetes ConfigMap, and the token from a Secret via access_token_file).
# Port: 9867 (/metrics, the status page at /, /-/healthy, /-/ready).
# The process runs as uid/gid 65532 (distroless "nonroot") and writes nothing to disk, so the
# root filesystem can be read-only. See deploy/README.md.

# The build stage runs exactly the release build .ci/run runs (`cargo build --release --locked`)
# with CI's toolchain. The locked dependencies need Rust 1.88 or newer. Debian 12 matches the
# runtime's glibc (2.36), so the binary never needs a newer one than the runtime has.
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
# make builds jemalloc (tikv-jemalloc-sys), the binary's allocator; the slim image has gcc.
RUN apt-get update && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The build context is whitelisted by .dockerignore: the manifest, the lock file, the sources
# and the benchmark the manifest declares.
COPY . .
# Shown in meta_messaging_exporter_build_info{revision}:
#   --build-arg GIT_REVISION="$(git rev-parse HEAD)"
ARG GIT_REVISION=unknown
# Empty by default: CI's build, with the default `demo` feature that `--demo` (and so
# deploy/docker-compose.yml) needs. The simulator stays idle unless --demo is given; for an
# image without it (where --demo fails saying so):
#   --build-arg CARGO_BUILD_FLAGS=--no-default-features
ARG CARGO_BUILD_FLAGS=
# Cache mounts keep the registry and compiled dependencies between builds; the binary is
# copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    GIT_REVISION="${GIT_REVISION}" cargo build --release --locked ${CARGO_BUILD_FLAGS} \
    && install -D -m 0755 target/release/meta-messaging-exporter /out/meta-messaging-exporter

# Runtime: glibc, libgcc, CA certificates and tzdata, no shell and no package manager. The
# binary links glibc dynamically and uses rustls (no OpenSSL); Meta's certificates are checked
# against the webpki roots compiled into it.
FROM ${RUNTIME_IMAGE}
ARG GIT_REVISION=unknown
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="meta-messaging-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Meta messaging analytics: Page messaging insights, marketing-message campaign insights and WhatsApp Business Account analytics" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=build /out/meta-messaging-exporter /usr/local/bin/meta-messaging-exporter
# Numeric, so Kubernetes' runAsNonRoot can verify it without resolving a name.
USER 65532:65532
ENV META_EXPORTER_CONFIG_FILE=/etc/meta-messaging-exporter/config.yaml
EXPOSE 9867
# No HEALTHCHECK: the image has no shell or HTTP client to run one. Orchestrators probe
# /-/healthy and /-/ready over HTTP instead (see deploy/kubernetes/deployment.yaml).
ENTRYPOINT ["/usr/local/bin/meta-messaging-exporter"]

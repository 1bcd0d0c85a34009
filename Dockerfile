# syntax=docker/dockerfile:1
#
# Errand's container image: `docker build -t errand .` at the repository root.
#   docker run image             -> errand serve (0.0.0.0:8080, JSON logs)
#   docker run image migrate     -> apply pending migrations and exit
#
# Base images are pinned by tag; pin them by digest too (@sha256:...) where
# the build must be reproducible. Builder and runtime must share the Debian
# release: the binary links that release's glibc, OpenSSL and zlib.
ARG DEBIAN_RELEASE=trixie

# Dependencies are cached with cargo-chef rather than the stub-source trick.
# The stub trick would have to fake both workspace members, the build script
# and the two bench/ examples Cargo.toml declares (Cargo refuses a manifest
# whose target files are missing), and it can ship a stale stub binary when
# the real sources' copied timestamps are older than the stub build. The
# recipe chef derives from the manifests covers all of that and removes its
# skeleton's artefacts, so the real sources always compile afresh.
FROM rust:1.95-${DEBIAN_RELEASE} AS chef
# librdkafka (rdkafka-sys, `ssl` feature) is compiled from source: it needs a
# C toolchain and make (in this image) plus OpenSSL and zlib headers and
# pkg-config to find them.
# Unpinned Debian packages: the release is pinned by the base image, and its
# security updates replace old versions in the archive, so exact pins would
# break the build and hold back fixes.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/* \
 && cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# The same profile, flags and target as the final build, or its cache misses.
RUN cargo chef cook --release --locked --bin errand --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin errand

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# What the binary links dynamically (OpenSSL for librdkafka's TLS, zlib) and
# the CA bundle that TLS to Kafka and PostgreSQL verifies against. The user
# is numeric so that Kubernetes' runAsNonRoot can verify it. /var/lib/errand
# is the working directory so that a bare `docker run` (SQLite file, embedded
# Kafka) has somewhere to write; deployments use PostgreSQL and a read-only
# root file system.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3t64 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 errand \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/errand --shell /usr/sbin/nologin errand \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/errand
COPY --from=builder /src/target/release/errand /usr/local/bin/errand
USER 10001:10001
WORKDIR /var/lib/errand
ENV ERRAND_LISTEN=0.0.0.0:8080 ERRAND_LOG_FORMAT=json
EXPOSE 8080
LABEL org.opencontainers.image.title="errand" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/usr/local/bin/errand"]
CMD ["serve"]

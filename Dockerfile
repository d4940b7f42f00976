# syntax=docker/dockerfile:1
# Multi-stage build of the `boxoffice` binary: a Rust toolchain stage, then a slim runtime.
# librdkafka is compiled from the rdkafka crate's bundled sources (needs a C toolchain, make and
# zlib headers, all in the rust:bookworm image), so the runtime needs no Kafka library.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so editing the source does not rebuild them: a stub crate with the real
# manifests and lock file.
COPY Cargo.toml Cargo.lock ./
COPY migrations/Cargo.toml migrations/Cargo.toml
COPY loadtest/Cargo.toml loadtest/Cargo.toml
# The gRPC contract whole: its build script compiles the .proto files (pure Rust, no protoc).
COPY proto proto
RUN mkdir -p src/bin/boxoffice migrations/src loadtest/src \
    && echo 'fn main() {}' > src/bin/boxoffice/main.rs \
    && touch src/lib.rs migrations/src/lib.rs loadtest/src/lib.rs \
    && cargo build --release --locked --bin boxoffice \
    && rm -rf src migrations/src loadtest/src
# The built-in defaults are config.toml itself, compiled in (src/config.rs).
COPY config.toml config.toml
COPY migrations migrations
COPY loadtest loadtest
COPY src src
# The stub's artefacts are older than the real sources, but touch them anyway so cargo rebuilds.
RUN touch src/bin/boxoffice/main.rs src/lib.rs migrations/src/lib.rs loadtest/src/lib.rs \
    && cargo build --release --locked --bin boxoffice \
    && install -m 0755 target/release/boxoffice /usr/local/bin/boxoffice

FROM debian:bookworm-slim AS runtime
# ca-certificates for SMTP/Kafka/MongoDB over TLS; curl for the container health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --create-home boxoffice
WORKDIR /app
COPY --from=build /usr/local/bin/boxoffice /usr/local/bin/boxoffice
COPY config.toml /app/config.toml
RUN mkdir -p /app/var && chown boxoffice /app/var
USER boxoffice
# Listen on all interfaces inside the container; everything else comes from config.toml and
# BOXOFFICE_<SECTION>__<KEY> variables (see docker-compose.yml).
ENV BOXOFFICE_HTTP__ADDR=0.0.0.0:8000 \
    BOXOFFICE_GRPC__ADDR=0.0.0.0:50051 \
    BOXOFFICE_LOG__FORMAT=json
EXPOSE 8000 50051
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/readyz || exit 1
ENTRYPOINT ["boxoffice"]
CMD ["serve"]

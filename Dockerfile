# Multi-stage build of the binary the tests test: `cargo build --release --locked` with the
# default features. `--build-arg FEATURES=impersonate` builds the Chrome-fingerprint transport
# instead (BoringSSL: needs cmake, clang and git in the build stage, ~2 minutes more).
FROM rust:1-slim-bookworm AS build
ARG FEATURES=""
# make: jemalloc (the allocator) is built from C with configure and make.
RUN apt-get update && apt-get install -y --no-install-recommends make \
      $([ -n "$FEATURES" ] && echo cmake clang libclang-dev g++ git) \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY assets ./assets
RUN cargo build --release --locked ${FEATURES:+--features "$FEATURES"}

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /app --create-home app
WORKDIR /app
COPY --from=build /src/target/release/enginelabs-2api /usr/local/bin/enginelabs-2api
USER app
ENV HOST=0.0.0.0 PORT=8089 DATA_DIR=/app/data
VOLUME ["/app/data"]
EXPOSE 8089
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s CMD curl -fsS http://127.0.0.1:8089/healthz || exit 1
ENTRYPOINT ["enginelabs-2api"]
CMD ["serve"]

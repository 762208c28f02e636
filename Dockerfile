# Multi-stage build: the same `cargo build --release --locked` (default features) that the tests test.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked && strip target/release/enginelabs-2api || true

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

# Switchyard in a container: a multi-stage build (the Rust toolchain only in the build stage), a
# small Debian runtime, a non-root user, the data directory as a volume.
#
#   docker build -t switchyard .
#   docker run --rm -p 8080:8080 -v "$PWD/examples:/etc/switchyard:ro" -v switchyard-data:/var/lib/switchyard \
#     -e TIKTOK_ACCESS_TOKEN -e SHOP_SERVER_WRITE_KEY switchyard serve --config /etc/switchyard/switchyard.yaml \
#     --listen 0.0.0.0:8080
#
# The config's `server.data_dir` should point at /var/lib/switchyard (or pass an absolute path).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p switchyard \
 && strip target/release/switchyard

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/switchyard --create-home switchyard
COPY --from=build /src/target/release/switchyard /usr/local/bin/switchyard
USER switchyard
WORKDIR /var/lib/switchyard
VOLUME ["/var/lib/switchyard"]
EXPOSE 8080
ENTRYPOINT ["switchyard"]
CMD ["--help"]

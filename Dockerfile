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
# PGO=1 (the default) ships the build optimised by a profile of its own training run
# (scripts/build-pgo: same code and behaviour, less CPU per event for `map`; ~35 min on 2 cores),
# its code then laid out by BOLT (scripts/bolt, ~2 min; BOLT=0 leaves that out); PGO=0 the plain
# release build (~13 min): docker build --build-arg PGO=0 -t switchyard .
ARG PGO=1
ARG BOLT=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 bolt-19 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN scripts/build-release "$PGO" /switchyard

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/switchyard --create-home switchyard
COPY --from=build /switchyard /usr/local/bin/switchyard
USER switchyard
WORKDIR /var/lib/switchyard
VOLUME ["/var/lib/switchyard"]
EXPOSE 8080
ENTRYPOINT ["switchyard"]
CMD ["--help"]

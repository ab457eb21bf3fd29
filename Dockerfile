# sbc appliance image: build stage on the Rust toolchain image, runtime on debian-slim,
# running as an unprivileged user. Build and run:
#
#   docker build -t sbc .
#   docker run --rm -p 5060:5060/udp -p 5060:5060/tcp -p 5061:5061 -p 8080:8080 \
#       -v sbc-data:/var/lib/sbc sbc
#
# The configuration is deploy/examples/server.toml (mount your own over /etc/sbc/sbc.toml).
# Generated TLS material lands in the /var/lib/sbc volume and survives restarts.

FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin sbc

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system sbc \
 && useradd --system --gid sbc --home-dir /var/lib/sbc --shell /usr/sbin/nologin sbc \
 && install -d -o sbc -g sbc -m 0700 /var/lib/sbc \
 && install -d -m 0755 /etc/sbc
COPY --from=build /src/target/release/sbc /usr/local/bin/sbc
COPY deploy/examples/server.toml /etc/sbc/sbc.toml
USER sbc:sbc
VOLUME ["/var/lib/sbc"]
EXPOSE 5060/udp 5060/tcp 5061/tcp 8080/tcp 20000-29999/udp
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sbc"]
CMD ["--config", "/etc/sbc/sbc.toml", "--log-format", "json"]

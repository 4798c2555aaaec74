# syntax=docker/dockerfile:1
# Signet: the `signet` binary on distroless (glibc, CA certificates, no shell), non-root.
#   docker build -t signet .
#   docker run --rm -v ./deploy:/etc/signet:ro -p 8443:8443 signet
# The Helm chart (charts/signet) mounts /etc/signet/config.yaml and everything it names.

FROM rust:1-bookworm AS builder
WORKDIR /src
# cmake for aws-lc-sys (the crypto backend of aws-lc-rs, rustls).
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p signet \
 && cp target/release/signet /signet

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /signet /signet
USER 65532:65532
EXPOSE 8443 9090
ENTRYPOINT ["/signet", "serve", "--config", "/etc/signet/config.yaml"]

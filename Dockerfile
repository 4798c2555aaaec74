# Signet: the `signet` binary on distroless (glibc, CA certificates, no shell), non-root.
#
# Plain Dockerfile syntax (no BuildKit-only features), so every builder can build it,
# including `az acr build` (ACR Tasks) and the classic `docker build`:
#   docker build --build-arg SIGNET_GIT_COMMIT=$(git rev-parse HEAD) -t signet .
#   az acr build --registry $ACR_NAME --image signet:v0.1.0 \
#     --build-arg SIGNET_GIT_COMMIT=$(git rev-parse HEAD) .
# Dockerfile.local is the same build with BuildKit cache mounts (faster rebuilds).
# The build context is the whole Cargo workspace (see .dockerignore; a test builds the
# context from it and runs `cargo metadata --locked` inside).
# The Helm chart (charts/signet) mounts /etc/signet/config.yaml and everything it names.

FROM rust:1-bookworm AS builder
# The commit `signet --version` prints: the context has no .git (see .dockerignore).
ARG SIGNET_GIT_COMMIT=unknown
WORKDIR /src
# cmake for aws-lc-sys (the crypto backend of aws-lc-rs, rustls).
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN SIGNET_GIT_COMMIT="$SIGNET_GIT_COMMIT" cargo build --release --locked -p signet \
 && cp target/release/signet /signet

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /signet /signet
USER 65532:65532
EXPOSE 8443 9090
ENTRYPOINT ["/signet", "serve", "--config", "/etc/signet/config.yaml"]

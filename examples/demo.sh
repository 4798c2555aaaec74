#!/usr/bin/env bash
# The README's main job, on a fresh machine in one command: Signet end to end, locally,
# without Docker or a cloud account.
#
#   1. installs Debian's docker-registry and htpasswd (apt; needs root or sudo),
#   2. builds `signet` and the demo (release),
#   3. runs `local-demo`: a real registry (TLS + htpasswd) on 127.0.0.1 with net-monitor:v1
#      (Notation-signed, COSE) and net-monitor:unsigned, `signet serve` on generated
#      certificates, and Gatekeeper's calls (mTLS): /v1/verify, /v1/mutate, /v1/admit.
#      It prints one image admitted and one denied, and exits 0 when that is what happened.
#
# Arguments go to local-demo, e.g. `bash examples/demo.sh --hold` keeps everything running
# and prints the endpoints and certificate paths (for load tests; Ctrl-C stops).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
target="${CARGO_TARGET_DIR:-$repo/target}"

echo "== installing docker-registry and htpasswd (.ci/install-deps --registry-only)"
bash .ci/install-deps --registry-only

echo "== building signet and the demo (cargo build --release)"
cargo build --release --locked -p signet -p signet-examples

echo "== running the demo"
exec "$target/release/local-demo" --signet "$target/release/signet" "$@"

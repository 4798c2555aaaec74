#!/usr/bin/env bash
# Offline demo (optional; the main one is examples/demo.sh): verifies a signed and an unsigned
# artifact (real Notation OCI layouts from the conformance corpus in testdata/conformance) with
# the `signet` CLI, and shows both verdicts. Needs nothing but cargo.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
corpus="${SIGNET_CONFORMANCE_DIR:-$repo/testdata/conformance}"
testdata="$corpus/vectors/notation/test/e2e/testdata"
[ -d "$testdata" ] || { echo "demo: the conformance corpus is not at $corpus (set SIGNET_CONFORMANCE_DIR)" >&2; exit 2; }

cargo build --release --locked -q -p signet --manifest-path "$repo/Cargo.toml"
signet="$repo/target/release/signet"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/truststore/x509/ca/e2e"
cp "$testdata/config/localkeys/e2e.crt" "$work/truststore/x509/ca/e2e/"
policy="$testdata/config/trustpolicies/trustpolicy.json"
at="2025-06-01T00:00:00Z"   # inside the corpus signer's validity

echo "== trust policy"
"$signet" policy check --trust-policy "$policy" --trust-store "$work/truststore"

for image in e2e-valid-signature e2e; do
  echo
  echo "== signet verify localhost:5000/net-monitor ($image layout)"
  set +e
  "$signet" verify --oci-layout --scope localhost:5000/net-monitor --at "$at" \
    --trust-policy "$policy" --trust-store "$work/truststore" \
    "$testdata/registry/oci_layout/$image:v1"
  status=$?
  set -e
  echo "exit status $status ($([ $status -eq 0 ] && echo admitted || echo refused))"
done

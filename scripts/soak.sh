#!/usr/bin/env bash
# Soak test: `signet serve` (the local demo: real docker-registry, real signatures) under
# steady load for SOAK_SECONDS (default 600), with the server certificate and the trust
# policy rotated every ROTATE_SECONDS (default 30). Every SAMPLE_SECONDS (default 10) it
# records the server's resident memory (VmRSS) and open file descriptors; at the end, the
# load tool's count of requests that failed and of answers that were not verified.
#
# Rotation, as Kubernetes does it: new files renamed into place.
# - certificate: two server certificates of one CA (`signet-loadtest certs --servers 2`),
#   alternated (the client trusts the CA; open connections keep their session);
# - trust policy: two policies that differ in an extra registry scope, alternated: each
#   swap is a new trust generation, which drops cached verdicts, so the images are
#   verified again against the registry (the cold path runs every ROTATE_SECONDS).
#
# Prerequisite: cargo build --profile profiling --locked -p signet -p signet-examples -p signet-loadtest
# (or PROFILE=release with a release build). Output: one line per sample, then a summary.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-$repo/target}/${PROFILE:-profiling}"
duration="${SOAK_SECONDS:-600}"
rotate="${ROTATE_SECONDS:-30}"
sample="${SAMPLE_SECONDS:-10}"
keys="${KEYS:-10}"
connections="${CONNECTIONS:-4}"

work="$(mktemp -d)"
demo_pid=""; load_pid=""
cleanup() {
  [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null || true
  [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/local-demo" --signet "$bin/signet" --hold --bench-images 20 --cold-images 0 \
  --log-level warn >"$work/demo.out" 2>&1 &
demo_pid=$!
for _ in $(seq 1 600); do
  grep -q '^READY' "$work/demo.out" && break
  kill -0 "$demo_pid" 2>/dev/null || { cat "$work/demo.out"; exit 1; }
  sleep 0.2
done
grep -q '^READY' "$work/demo.out" || { cat "$work/demo.out"; echo "demo not ready" >&2; exit 1; }
field() { awk -v k="$1" '/^Holding/ { h = 1; next } h && index($0, "  " k " ") == 1 { sub("^  " k " +", ""); print; exit }' "$work/demo.out"; }
addr="$(field 'signet serve' | awk '{print $1}' | sed 's#https://##')"
pid="$(field 'signet serve' | sed -E 's/.*pid ([0-9]+).*/\1/')"
read -r cert key <<<"$(field 'client cert/key')"
read -r scert skey <<<"$(field 'server cert/key')"
policy="$(field 'trust policy')"
bench="$(field 'bench images' | awk '{print $1}' | sed 's/:0$//')"
log="$(field 'serve log')"

# Our server PKI: two certificates of one CA, put in place of the demo's (the server
# reloads it; the client trusts our CA).
"$bin/signet-loadtest" certs --servers 2 "$work/pki" >/dev/null
swap_cert() { # $1: "" or "-1"
  cp "$work/pki/server$1.key" "$skey.tmp" && cp "$work/pki/server$1.crt" "$scert.tmp"
  mv "$skey.tmp" "$skey" && mv "$scert.tmp" "$scert"
}
swap_cert ""
sleep 2
python3 - "$policy" "$work/policy-a.json" "$work/policy-b.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
for out, extra in ((sys.argv[2], "rotation.invalid/a"), (sys.argv[3], "rotation.invalid/b")):
    d = json.loads(json.dumps(doc))
    d["trustPolicies"][0]["registryScopes"].append(extra)
    json.dump(d, open(out, "w"), indent=2)
EOF
swap_policy() { cp "$1" "$policy.tmp" && mv "$policy.tmp" "$policy"; }

echo "== soak: ${duration}s, rotation every ${rotate}s, ${connections} connections, ${keys} keys per request, signet serve pid $pid"
echo "== $(uptime)"
"$bin/signet-loadtest" run --addr "$addr" --ca "$work/pki/ca.crt" --cert "$cert" --key "$key" \
  --image "$bench" --images 20 --keys "$keys" --connections "$connections" \
  --requests 1000000000 --seconds "$duration" --warmup 0 --check-answers >"$work/load.json" &
load_pid=$!

start=$(date +%s); next_rotation=$((start + rotate)); n=0
printf '%8s %10s %6s %s\n' seconds rss_kib fds event
while kill -0 "$load_pid" 2>/dev/null; do
  now=$(date +%s); event=""
  if [ "$now" -ge "$next_rotation" ]; then
    n=$((n + 1))
    if [ $((n % 2)) -eq 1 ]; then swap_cert "-1"; swap_policy "$work/policy-b.json"
    else swap_cert ""; swap_policy "$work/policy-a.json"; fi
    event="rotated certificate and trust policy (#$n)"
    next_rotation=$((next_rotation + rotate))
  fi
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  fds=$(ls "/proc/$pid/fd" | wc -l)
  printf '%8d %10s %6s %s\n' $((now - start)) "$rss" "$fds" "$event"
  sleep "$sample"
done
wait "$load_pid" || true
echo "== load: $(cat "$work/load.json")"
echo "== peak RSS: $(grep VmHWM "/proc/$pid/status")"
echo "== reloads logged: $(grep -c 'reload' "$log" || true), errors logged: $(grep -ci 'error' "$log" || true)"
echo "== $(uptime)"

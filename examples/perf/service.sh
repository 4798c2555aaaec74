#!/usr/bin/env bash
# Service performance (docs/performance.md, "signet serve with the real engine"): runs the
# local demo in --hold mode (real docker-registry, real engine, 50 signed `bench` images and
# 20 never-requested signed `cold` images), then with the release `signet-loadtest`:
#   - cold latency: the 20 cold images one by one (1 connection, 1 key, no warm-up),
#   - warm-up of the 50 bench images,
#   - 1, 10 and 50 keys per request against signet serve and against the `floor` server,
#   - signet serve's peak RSS (VmHWM).
# Prerequisite: cargo build --release --locked -p signet -p signet-examples -p signet-loadtest
# Output: one JSON line per load-test run (labelled), then the peak RSS.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${CARGO_TARGET_DIR:-$repo/target}/release"
requests="${REQUESTS:-1000000}"
seconds="${SECONDS_PER_RUN:-15}"
connections="${CONNECTIONS:-8}"

work="$(mktemp -d)"
demo_pid=""; floor_pid=""
cleanup() {
  [ -n "$floor_pid" ] && kill "$floor_pid" 2>/dev/null || true
  [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== uptime: $(uptime)"
"$bin/local-demo" --signet "$bin/signet" --hold --bench-images 50 --cold-images 20 \
  --log-level warn >"$work/demo.out" 2>&1 &
demo_pid=$!
for _ in $(seq 1 600); do
  grep -q '^READY' "$work/demo.out" && break
  kill -0 "$demo_pid" 2>/dev/null || { cat "$work/demo.out"; exit 1; }
  sleep 0.2
done
grep -q '^READY' "$work/demo.out" || { cat "$work/demo.out"; echo "demo not ready" >&2; exit 1; }
# A value of local-demo's "Holding" block: `  LABEL   VALUE`.
field() { awk -v k="$1" '/^Holding/ { h = 1; next } h && index($0, "  " k " ") == 1 { sub("^  " k " +", ""); print; exit }' "$work/demo.out"; }
addr="$(field 'signet serve' | awk '{print $1}' | sed 's#https://##')"
pid="$(field 'signet serve' | sed -E 's/.*pid ([0-9]+).*/\1/')"
ca="$(field 'server CA')"
read -r cert key <<<"$(field 'client cert/key')"
read -r scert skey <<<"$(field 'server cert/key')"
cca="$(field 'client CA')"
bench="$(field 'bench images' | awk '{print $1}' | sed 's/:0$//')"
cold="$(field 'cold images' | awk '{print $1}' | sed 's/:0$//')"
echo "== signet serve $addr (pid $pid), bench $bench, cold $cold"

lt() { "$bin/signet-loadtest" run --ca "$ca" --cert "$cert" --key "$key" "$@"; }
# Other CPU-heavy processes (compilers) running now: the machine is shared.
busy() { echo "loadavg $(cut -d' ' -f1-3 /proc/loadavg), compilers running: $(ps -eo comm= | grep -cE '^(rustc|cc1|cc1plus|ld|lld|cargo)$' || true)"; }

echo "== the registry's own time per request: 20 HEADs of one manifest on one connection after a first one (curl, Basic auth)"
registry="$(field 'registry' | awk '{print $1}')"
auth="$(sed -nE 's/.*"auth": "([^"]+)".*/\1/p' "$(field 'docker config')" | base64 -d)"
urls=(); for _ in $(seq 1 21); do urls+=(-o /dev/null "$registry/v2/net-monitor/manifests/v1"); done
curl -s --head -u "$auth" --cacert "$(field 'registry CA')" \
  -H 'accept: application/vnd.oci.image.manifest.v1+json' -w '%{time_total}\n' "${urls[@]}" |
  tail -n +2 | sort -n | awk '{a[NR]=$1} END {printf "registry HEAD (warm connection): p50 %.2f ms, max %.2f ms (n=%d)\n", a[int(NR/2)+1]*1000, a[NR]*1000, NR}'

echo "== cold: 20 never-seen signed images, one by one (1 connection, 1 key per request)"
busy
echo "cold $(lt --addr "$addr" --image "$cold" --images 20 --connections 1 --keys 1 --requests 20 --warmup 0)"

echo "== warm-up: every bench image once"
lt --addr "$addr" --image "$bench" --images 50 --connections 1 --keys 50 --requests 2 --warmup 0 >/dev/null

"$bin/signet-loadtest" floor --listen 127.0.0.1:9443 --cert "$scert" --key "$skey" --client-ca "$cca" >/dev/null &
floor_pid=$!
sleep 0.5

for k in 1 10 50; do
  busy
  echo "serve $(lt --addr "$addr" --image "$bench" --images 50 --connections "$connections" --keys "$k" --requests "$requests" --seconds "$seconds")"
  echo "floor $(lt --addr 127.0.0.1:9443 --image "$bench" --images 50 --connections "$connections" --keys "$k" --requests "$requests" --seconds "$seconds")"
done

echo "== signet serve peak RSS: $(grep VmHWM /proc/"$pid"/status)"
echo "== floor peak RSS: $(grep VmHWM /proc/"$floor_pid"/status)"
echo "== uptime: $(uptime)"

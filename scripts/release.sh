#!/usr/bin/env bash
# Publishes one Signet release: the multi-arch image with a version tag and the Helm chart as
# an OCI artifact, both from this checkout.
#
#   scripts/release.sh REGISTRY            e.g. scripts/release.sh ghcr.io/signet-project
#
# Pushes REGISTRY/signet:VERSION (linux/amd64 and linux/arm64, `signet --version` naming the
# commit) and oci://REGISTRY/charts/signet:VERSION, where VERSION is the workspace version
# (Cargo.toml), which must equal the chart's version and appVersion. Then tag the commit
# vVERSION: the PublicURL Azure Policy definition points at policy/template.yaml of that tag.
# Needs docker buildx, helm >= 3.8, a login to REGISTRY (docker login, helm registry login),
# a clean work tree. DRY_RUN=1 prints the commands instead of running them.
set -euo pipefail
cd "$(dirname "$0")/.."

registry="${1:?usage: scripts/release.sh REGISTRY (e.g. ghcr.io/signet-project)}"
registry="${registry%/}"
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
chart_version=$(sed -n 's/^version: *//p' charts/signet/Chart.yaml)
app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' charts/signet/Chart.yaml)
if [ "$version" != "$chart_version" ] || [ "$version" != "$app_version" ]; then
  echo "version mismatch: Cargo.toml $version, Chart.yaml version $chart_version appVersion $app_version" >&2
  exit 2
fi
if [ -z "${DRY_RUN:-}" ] && [ -n "$(git status --porcelain)" ]; then
  echo "the work tree has uncommitted changes: release from a clean checkout" >&2
  exit 2
fi
commit=$(git rev-parse HEAD)

run() {
  echo "+ $*"
  if [ -z "${DRY_RUN:-}" ]; then "$@"; fi
}

# The image: ./Dockerfile (plain syntax, as az acr build uses), multi-arch, pushed.
run docker buildx build --platform linux/amd64,linux/arm64 \
  --build-arg "SIGNET_GIT_COMMIT=$commit" \
  --tag "$registry/signet:$version" --push .

# The chart: packaged and pushed as an OCI artifact (helm install oci://$registry/charts/signet).
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run helm package charts/signet --destination "$out"
run helm push "$out/signet-$chart_version.tgz" "oci://$registry/charts"

echo "released $version ($commit): $registry/signet:$version, oci://$registry/charts/signet --version $version"
echo "next: git tag v$version $commit && git push origin v$version"

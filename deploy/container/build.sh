#!/usr/bin/env bash
# Builds the purchasesync image with podman or docker, whichever is installed
# (podman is installed with apt when neither podman nor a running docker is):
#
#   deploy/container/build.sh            -> localhost/purchasesync:<version> and :dev
#
# The binary is built here, beside the image (CGO_ENABLED=0, -trimpath, version
# and commit stamped from git with -ldflags: `purchasesync version`), and
# copied into a FROM scratch image with CA certificates and time-zone data taken
# from this machine, so no registry is needed. Prints the image's tags and size.
#
# On this project's machines podman needs runc, cgroupfs and no default ulimits
# (the sandbox refuses crun and setrlimit): CONTAINERS_CONF points at
# deploy/container/containers.conf unless already set. Run the image with
# `podman run --network=host localhost/purchasesync:dev` (deploy/README.md).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin

# engine prints podman or docker, installing podman (Debian) when neither is.
# docker counts only with a daemon that answers: these machines ship the docker
# CLI without one.
engine() {
  if command -v podman >/dev/null; then echo podman; return; fi
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then echo docker; return; fi
  echo "build.sh: installing podman and runc (apt-get install podman runc)" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q podman runc >&2 ||
    { $sudo apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q podman runc >&2; } ||
    { echo "build.sh: cannot install podman; install podman or docker" >&2; exit 1; }
  command -v podman >/dev/null || { echo "build.sh: podman installed but not on PATH" >&2; exit 1; }
  echo podman
}
ENGINE=$(engine)
if [ "$ENGINE" = podman ]; then
  export CONTAINERS_CONF=${CONTAINERS_CONF:-$HERE/containers.conf}
fi

t0=$(date +%s)
ctx=$HERE/.build
rm -rf "$ctx"
mkdir -p "$ctx/etc/ssl/certs" "$ctx/usr/share"
# The version comes from git, stamped with -ldflags into the variables that
# `purchasesync version` and the purchasesync_build_info metric read (the Go
# toolchain's own VCS stamp is off under GOFLAGS=-buildvcs=false and in git
# worktrees). A tag vX.Y.Z on HEAD is the version; otherwise a Go-style
# pseudo-version of the commit; -dirty when the tree has uncommitted changes.
commit=$(git rev-parse HEAD)
dirty=""
[ -z "$(git status --porcelain --untracked-files=no)" ] || dirty="-dirty"
if version=$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null); then
  version=$version$dirty
else
  version=v0.0.0-$(TZ=UTC git show -s --format=%cd --date=format-local:%Y%m%d%H%M%S HEAD)-$(git rev-parse --short=12 HEAD)$dirty
fi
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
pv=github.com/prometheus/common/version
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X $pv.Version=$version -X $pv.Revision=$commit -X $pv.BuildDate=$built" \
  -o "$ctx/purchasesync" ./cmd/purchasesync
tag=$version

for f in /etc/ssl/certs/ca-certificates.crt /usr/share/zoneinfo/UTC; do
  [ -e "$f" ] || { echo "build.sh: $f is missing (apt-get install ca-certificates tzdata)" >&2; exit 1; }
done
cp /etc/ssl/certs/ca-certificates.crt "$ctx/etc/ssl/certs/"
cp -r /usr/share/zoneinfo "$ctx/usr/share/"
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' >"$ctx/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$ctx/etc/group"
cp "$HERE/Containerfile" "$ctx/Containerfile"

"$ENGINE" build -q -f "$ctx/Containerfile" --build-arg "VERSION=$version" --build-arg "COMMIT=$commit" \
  -t "localhost/purchasesync:$tag" -t localhost/purchasesync:dev "$ctx" >/dev/null
size=$("$ENGINE" image inspect --format '{{.Size}}' localhost/purchasesync:dev)
echo "build.sh: built localhost/purchasesync:$tag and :dev with $ENGINE in $(( $(date +%s) - t0 ))s, $(( size / 1024 / 1024 )) MiB ($size bytes)" >&2
echo "localhost/purchasesync:$tag"

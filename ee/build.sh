#!/usr/bin/env bash
# Builds the trustroot.ops execution environment with podman + ansible-builder (no registry, no Docker):
#   1. a Debian bookworm base image made with debootstrap, cached as ~/.cache/trustroot-ops/ee/base-<key>.tar
#   2. the collection tarball of this checkout (ansible-galaxy collection build) into .cache/ee/dist
#   3. ansible-builder build from ee/execution-environment.yml, context in .cache/ee/context
# The image is tagged localhost/trustroot-ops-ee:<content key> (and :latest); the key hashes the EE definition,
# its requirements and bindep files, the collection's meta/execution-environment.yml, requirements.txt and bindep.txt,
# this script and what runs from the tarball (the sha256 of its plugins/, roles/, playbooks/ and meta/ files as its
# FILES.json records them, its version and dependencies). An image of that key already in the store is not built again. The last line printed is the image name.
#   ee/build.sh            build when needed
#   ee/build.sh --key      print the key only (builds the tarball, nothing else)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache/ee
# The debootstrapped base (a function of the suite, packages and mirror only) is kept in the machine's cache, so a
# fresh checkout reuses it; the image store and everything built from the checkout stay in the checkout.
BASE_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/trustroot-ops/ee
VENV=$ROOT/.venv/bin
SUITE=bookworm
BASE_PACKAGES=python3,python3-pip,python3-venv,ca-certificates
IMAGE=localhost/trustroot-ops-ee
BASE_IMAGE=localhost/trustroot-ee-base:$SUITE   # the name ee/execution-environment.yml builds from

log() { printf '[ee] %s\n' "$*" >&2; }

# podman's configuration and storage are the project's own (ee/containers.conf: runc, ulimits).
mkdir -p "$CACHE/storage" "$CACHE/run" "$CACHE/dist"
cat > "$CACHE/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$CACHE/storage"
runroot = "$CACHE/run"
CONF
export CONTAINERS_CONF=$ROOT/ee/containers.conf
export CONTAINERS_STORAGE_CONF=$CACHE/storage.conf

mirror() {
  # The Debian mirror apt uses on this machine (tests/lab/hosts.py reads the same sources).
  "$VENV/python" -c 'from tests.lab import hosts; print(hosts.find_mirror())'
}

collection_tarball() {
  rm -f "$CACHE"/dist/trustroot-ops-*.tar.gz
  "$VENV/ansible-galaxy" collection build --force --output-path "$CACHE/dist" . >/dev/null
  mv "$CACHE"/dist/trustroot-ops-*.tar.gz "$CACHE/dist/trustroot-ops.tar.gz"
}

content_key() {
  {
    cat ee/execution-environment.yml ee/requirements.yml ee/bindep.txt ee/containers.conf ee/build.sh \
      meta/execution-environment.yml requirements.txt bindep.txt
    echo "base $SUITE $BASE_PACKAGES"
    # What runs from the tarball: the sha256 of each file under plugins/, roles/, playbooks/, meta/ (FILES.json) and
    # the collection's version and dependencies. Documentation and changelog edits do not rebuild the image.
    "$VENV/python" - "$CACHE/dist/trustroot-ops.tar.gz" <<'PY'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as tar:
    manifest = json.load(tar.extractfile('MANIFEST.json'))
    files = json.load(tar.extractfile('FILES.json'))
info = manifest['collection_info']
print(json.dumps([info['namespace'], info['name'], info['version'], info['dependencies']]))
for entry in files['files']:
    if entry['name'].split('/')[0] in ('plugins', 'roles', 'playbooks', 'meta') and entry['ftype'] == 'file':
        print(entry['name'], entry['chksum_sha256'])
PY
  } | sha256sum | cut -c1-16
}

base_image() {
  local key tarball root
  key=$(echo "$SUITE $BASE_PACKAGES $(mirror)" | sha256sum | cut -c1-16)
  mkdir -p "$BASE_CACHE"
  tarball=$BASE_CACHE/base-$key.tar
  if [ ! -s "$tarball" ]; then
    log "debootstrap $SUITE (minbase + $BASE_PACKAGES) into $tarball"
    root=$(mktemp -d "$BASE_CACHE/base-$key.root.XXXXXX")
    rm -rf "$root"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$root" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    tar -C "$root" -cf "$root.tar" . && mv "$root.tar" "$tarball"   # another checkout may build it at once
    rm -rf "$root"
  fi
  if ! podman image exists "localhost/trustroot-ee-base:$key"; then
    log "importing the base image"
    podman import --quiet "$tarball" "localhost/trustroot-ee-base:$key" >/dev/null
  fi
  podman tag "localhost/trustroot-ee-base:$key" "$BASE_IMAGE"
}

# One build at a time (two test workers may ask at once): the second finds the first one's image.
exec 9>"$CACHE/build.lock"
flock 9

collection_tarball
KEY=$(content_key)
if [ "${1:-}" = --key ]; then echo "$KEY"; exit 0; fi

if podman image exists "$IMAGE:$KEY"; then
  log "image $IMAGE:$KEY is up to date"
else
  base_image
  log "ansible-builder build -> $IMAGE:$KEY"
  started=$(date +%s)
  # The build's pip and apt-get trust this machine's CA bundle (a TLS-inspecting proxy may sit in between).
  "$VENV/ansible-builder" build -f ee/execution-environment.yml --context "$CACHE/context" \
    --container-runtime podman --tag "$IMAGE:$KEY" --tag "$IMAGE:latest" -v 2 \
    --extra-build-cli-args="-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro" \
    >"$CACHE/build.log" 2>&1 || { tail -40 "$CACHE/build.log" >&2; log "build failed: $CACHE/build.log"; exit 1; }
  log "built in $(( $(date +%s) - started ))s; $(podman image inspect "$IMAGE:$KEY" --format '{{.Size}}') bytes"
  # Old builds of the EE go: only the current key is kept.
  podman images --format '{{.Repository}}:{{.Tag}}' | grep "^$IMAGE:" | grep -v -e ":$KEY\$" -e ':latest$' \
    | xargs -r podman rmi >/dev/null 2>&1 || true
  # podman 4.3's build leaves its working containers behind in storage (one per stage and COPY --from, each a layer
  # of hundreds of MB), and the galaxy and builder stages as untagged images: this storage is the EE build's own, so
  # everything of that kind in it is a leftover.
  podman ps -a --external --format '{{.ID}} {{.Status}}' | awk '$2 == "Storage" {print $1}' | xargs -r podman rm -f >/dev/null 2>&1 || true
  podman image prune -f >/dev/null 2>&1 || true
fi
podman tag "$IMAGE:$KEY" "$IMAGE:latest"
echo "$IMAGE:$KEY"

#!/usr/bin/env bash
# ansible-test sanity without Docker: a copy of the tracked tree under .cache/sanity/ansible_collections/
# trustroot/ops (ansible-test needs that path), and a local pip bootstrap in ansible-test's cache.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
pip_version=$($PY -c 'from ansible_test._internal.python_requirements import get_venv_packages
class P: version = "3.11"
print(get_venv_packages(P())["pip"])')
shim=~/.ansible/test/cache/get_pip_${pip_version//./_}.py
mkdir -p "$(dirname "$shim")"
cmp -s scripts/get_pip_shim.py "$shim" || cp scripts/get_pip_shim.py "$shim"

# The copy must be outside any git checkout: inside one (even git-ignored), ansible-test lists files
# through that repository, finds none under the copy, and skips every target.
sanity_root=${SANITY_ROOT:-$(mktemp -d "${TMPDIR:-/tmp}/trustroot-ops-sanity.XXXXXX")}
[ -n "${SANITY_ROOT:-}" ] || trap 'rm -rf "$sanity_root"' EXIT
dest=$sanity_root/ansible_collections/trustroot/ops
rm -rf "$dest" && mkdir -p "$dest"
# Tracked and new (not ignored) files, as they are in the work tree; nothing else.
git ls-files -z --cached --others --exclude-standard | rsync -a --from0 --files-from=- ./ "$dest/"
cd "$dest"
log=$sanity_root/sanity.log
set +e
"$ROOT/.venv/bin/ansible-test" sanity --local --python 3.11 --requirements "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if grep -q "All targets skipped" "$log"; then
  echo "ansible-test skipped every target: the copy at $dest was not seen as a collection" >&2
  exit 1
fi
exit "$rc"

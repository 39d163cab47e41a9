#!/usr/bin/env bash
# The collection as users get it: build the tarball, install it into an empty collections path, and
# import every module, module_util, filter and doc fragment from the installed copy.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$PWD/.venv/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$VENV/ansible-galaxy collection build --force --output-path "$work/dist" >/dev/null
tarball=$(ls "$work"/dist/trustroot-ops-*.tar.gz)
ANSIBLE_COLLECTIONS_PATH="$work/installed" $VENV/ansible-galaxy collection install --force -p "$work/installed" "$tarball" >/dev/null
# Nothing of the test bed or the lab may ship.
if tar -tzf "$tarball" | grep -E '^(tests/|benchmarks/|scripts/|\.venv/|\.cache/|\.lab/)'; then
  echo "the tarball holds files that must not ship (above)"; exit 1
fi
PYTHONPATH="$work/installed" $VENV/python - <<'PY'
import importlib, pkgutil
count = 0
for sub in ('modules', 'module_utils', 'filter', 'doc_fragments'):
    pkg = importlib.import_module('ansible_collections.trustroot.ops.plugins.' + sub)
    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module('%s.%s' % (pkg.__name__, info.name))
        count += 1
print('%d plugin files import from the installed collection' % count)
PY
echo "built and installed $(basename "$tarball")"

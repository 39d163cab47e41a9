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

# SANITY_ROOT lets concurrent runs use separate copies.
dest=${SANITY_ROOT:-$ROOT/.cache/sanity}/ansible_collections/trustroot/ops
rm -rf "$dest" && mkdir -p "$dest"
# Tracked and new (not ignored) files, as they are in the work tree; nothing else.
git ls-files -z --cached --others --exclude-standard | rsync -a --from0 --files-from=- ./ "$dest/"
cd "$dest"
"$ROOT/.venv/bin/ansible-test" sanity --local --python 3.11 --requirements "$@"

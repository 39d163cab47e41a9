#!/usr/bin/env bash
# Every molecule scenario (or those named) through the whole `molecule test` sequence on lab hosts:
# create, prepare, converge, idempotence, verify, destroy.
#   scripts/molecule.sh [scenario ...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=$ROOT/.venv/bin:$PATH   # molecule calls ansible-playbook and ansible-config from PATH
export ANSIBLE_COLLECTIONS_PATH=$ROOT/.cache/collections
export ANSIBLE_PIPELINING=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0 ANSIBLE_FORCE_COLOR=0
if [ $# -eq 0 ]; then
  set -- $(for f in molecule/*/molecule.yml; do basename "$(dirname "$f")"; done)
fi
for scenario in "$@"; do
  start=$SECONDS
  printf '\n--- molecule test -s %s\n' "$scenario"
  molecule test -s "$scenario"
  printf -- '--- %s passed in %ds\n' "$scenario" $((SECONDS - start))
done

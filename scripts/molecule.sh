#!/usr/bin/env bash
# Every molecule scenario (or those named) through the whole `molecule test` sequence on lab hosts:
# create, prepare, converge, idempotence, verify, destroy.
#   scripts/molecule.sh [scenario ...]
# MOLECULE_JOBS scenarios run at once (default 2: each lab is its own set of hosts, and most of a scenario's time
# is spent waiting on services); a scenario's output is printed whole when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=$ROOT/.venv/bin:$PATH   # molecule calls ansible-playbook and ansible-config from PATH
export ANSIBLE_COLLECTIONS_PATH=$ROOT/.cache/collections
export ANSIBLE_PIPELINING=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0 ANSIBLE_FORCE_COLOR=0
# No -C in the SSH arguments (Ansible's default has it): zlib over a local bridge only costs CPU (tests/lab/hosts.py).
export ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=60s"
JOBS=${MOLECULE_JOBS:-2}
if [ $# -eq 0 ]; then
  set -- $(for f in molecule/*/molecule.yml; do basename "$(dirname "$f")"; done)
fi
LOGS=$ROOT/.cache/molecule-logs
mkdir -p "$LOGS"

run_one() {
  local scenario=$1 start=$SECONDS rc=0
  molecule test -s "$scenario" >"$LOGS/$scenario.log" 2>&1 || rc=$?
  {
    printf '\n--- molecule test -s %s\n' "$scenario"
    cat "$LOGS/$scenario.log"
    if [ "$rc" -eq 0 ]; then
      printf -- '--- %s passed in %ds\n' "$scenario" $((SECONDS - start))
    else
      printf -- '--- %s FAILED (rc=%d) in %ds\n' "$scenario" "$rc" $((SECONDS - start))
    fi
    # For the gate's timing table (scripts/test.sh).
    if [ -n "${TRUSTROOT_TEST_TIMING_DIR:-}" ]; then
      mkdir -p "$TRUSTROOT_TEST_TIMING_DIR/molecule"
      printf '{"seconds": %d, "passed": %s}\n' $((SECONDS - start)) "$([ "$rc" -eq 0 ] && echo true || echo false)" \
        > "$TRUSTROOT_TEST_TIMING_DIR/molecule/$scenario.json"
    fi
  } | flock "$LOGS/.print" cat
  return "$rc"
}

failed=0
running=0
for scenario in "$@"; do
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
  run_one "$scenario" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
if [ "$failed" -ne 0 ]; then
  echo 'molecule: a scenario failed (see above)' >&2
  exit 1
fi

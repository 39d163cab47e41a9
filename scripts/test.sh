#!/usr/bin/env bash
# `make test`: every gate, in order of speed; stops at the first failure. Ends with the timing table (where the
# time went: each phase, each integration test file, each molecule scenario), also written as JSON to
# .cache/test-timing/<UTC start>.json and .cache/test-timing/latest.json so that any two runs can be compared.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv/bin
TIMING=.cache/test-timing
RUN_DIR=$TIMING/run
rm -rf "$RUN_DIR" && mkdir -p "$RUN_DIR/molecule"
export TRUSTROOT_TEST_TIMING_DIR=$PWD/$RUN_DIR
layer_pid=
molecule_pid=

finish() {
  local rc=$?
  if [ -n "$layer_pid" ] && kill -0 "$layer_pid" 2>/dev/null; then
    # The layer maker (the python child of that background shell) unwinds on SIGTERM and destroys its lab.
    pkill -TERM -P "$layer_pid" 2>/dev/null || true
    wait "$layer_pid" 2>/dev/null || true
  fi
  if [ -n "$molecule_pid" ]; then
    # Molecule destroys each scenario's lab itself: let the running ones end.
    wait "$molecule_pid" 2>/dev/null || true
    cat "$RUN_DIR/molecule.log" 2>/dev/null || true
  fi
  python3 scripts/timing_report.py "$RUN_DIR" "$TIMING" "$rc" || true
  exit "$rc"
}
trap finish EXIT
# A stopped run is a failed one: without these the EXIT trap would see the status of the last command (0).
trap 'exit 143' TERM
trap 'exit 130' INT

record() {  # name start end status
  printf '%s\t%s\t%s\t%s\n' "$@" >> "$RUN_DIR/phases.tsv"
}

phase() {
  local name=$1 start rc=0
  shift
  printf '\n=== %s\n' "$name"
  start=$(date +%s.%N)
  "$@" || rc=$?
  record "$name" "$start" "$(date +%s.%N)" "$rc"
  return "$rc"
}

make_layer() {
  # The installed stacks the lab tests boot from (tests/lab/layers.py), made while the static checks run: the
  # current releases, then the previous ones (the rolling upgrade test). The integration tests take a layer when its
  # key matches the code, and would make it themselves otherwise.
  local start rc=0
  start=$(date +%s.%N)
  $VENV/python -m tests.lab.layers build --name stack > "$RUN_DIR/layer-stack.log" 2>&1 || rc=$?
  record "stack layer: install.yml on 6 lab hosts (in the background)" "$start" "$(date +%s.%N)" "$rc"
  [ "$rc" = 0 ] || return "$rc"
  start=$(date +%s.%N)
  $VENV/python -m tests.lab.layers build --name stack-previous >> "$RUN_DIR/layer-stack.log" 2>&1 || rc=$?
  record "stack-previous layer: the same on the previous OpenBao and SPIRE (in the background)" "$start" "$(date +%s.%N)" "$rc"
  return "$rc"
}

phase "bootstrap (packages, venv, bao, SPIRE, MinIO, kube-apiserver, lab rootfs)" scripts/bootstrap.sh
if [ "$(id -u)" -eq 0 ]; then
  make_layer &
  layer_pid=$!
fi
# The static checks share no files and each keeps about one core busy: they run side by side in four lanes
# (beside the stack layer), each lane into its own log, printed in order once all have ended.
lane() {  # log, then (name, command) pairs run in order until one fails
  local log=$1 name start rc=0
  shift
  : > "$log"
  while [ $# -gt 0 ] && [ "$rc" -eq 0 ]; do
    name=$1
    shift
    printf '\n=== %s\n' "$name" >> "$log"
    start=$(date +%s.%N)
    eval "$1" >> "$log" 2>&1 || rc=$?
    shift
    record "$name (side by side)" "$start" "$(date +%s.%N)" "$rc"
  done
  return "$rc"
}
lane_pids=()
lane "$RUN_DIR/lane-lint.log" \
  "ansible-lint (production profile)" "$VENV/ansible-lint --profile production" \
  "galaxy-importer on the built collection (ansible-lint on)" "scripts/galaxy_check.sh" &
lane_pids+=($!)
lane "$RUN_DIR/lane-sanity.log" "ansible-test sanity" "scripts/sanity.sh" &
lane_pids+=($!)
lane "$RUN_DIR/lane-build.log" \
  "collection build and install" "scripts/check_build.sh" \
  "unit tests" "$VENV/pytest -q tests/unit" \
  "duplicate code in plugins/ (pylint similarity, documentation blocks aside)" \
  "$VENV/python scripts/duplicate_code_check.py" \
  "changelog: a fragment per change, antsibull-changelog lint, CHANGELOG.md as generated" \
  "$VENV/python scripts/changelog_check.py" \
  "collection docs: antsibull-docs lint, extra docs, the docs site (Sphinx -W)" "scripts/docs_check.sh" &
lane_pids+=($!)
lane "$RUN_DIR/lane-oldest.log" \
  "oldest ansible-core claimed: unit tests and OpenBao playbooks under it" "scripts/oldest_ansible_check.sh" &
lane_pids+=($!)
static_failed=0
for pid in "${lane_pids[@]}"; do
  wait "$pid" || static_failed=1
done
for lane_name in lint sanity build oldest; do
  cat "$RUN_DIR/lane-$lane_name.log"
done
if [ "$static_failed" -ne 0 ]; then
  echo 'a static check failed (its output is above)' >&2
  exit 1
fi
if [ -n "$layer_pid" ]; then
  printf '\n=== waiting for the stack layer\n'
  if ! wait "$layer_pid"; then
    layer_pid=
    cat "$RUN_DIR/layer-stack.log"
    echo 'the stack layer could not be made (its log is above)' >&2
    exit 1
  fi
  layer_pid=
  tail -n 2 "$RUN_DIR/layer-stack.log"
fi
run_molecule() {
  local start rc=0
  start=$(date +%s.%N)
  MOLECULE_JOBS=1 scripts/molecule.sh > "$RUN_DIR/molecule.log" 2>&1 || rc=$?
  record "molecule scenarios, one at a time (in the background, beside the integration tests)" \
    "$start" "$(date +%s.%N)" "$rc"
  return "$rc"
}

# Molecule scenarios run one at a time beside the integration tests: both spend much of their time waiting on
# services, and together they keep the machine busy (each lab has its own hosts and subnet).
run_molecule &
molecule_pid=$!
phase "integration tests (real OpenBao and SPIRE, lab hosts, real ansible-playbook)" \
  env TRUSTROOT_TEST_TIMING_FILE="$PWD/$RUN_DIR/integration.json" \
  $VENV/python -m pytest -q -n 2 --dist loadfile -p tests.timing.pytest_files tests/integration
printf '\n=== molecule scenarios (every role on lab hosts, beside the integration tests)\n'
molecule_rc=0
wait "$molecule_pid" || molecule_rc=$?
molecule_pid=
cat "$RUN_DIR/molecule.log"
if [ "$molecule_rc" -ne 0 ]; then
  echo 'molecule: a scenario failed (see above)' >&2
  exit 1
fi

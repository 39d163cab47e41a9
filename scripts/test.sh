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
trap 'python3 scripts/timing_report.py "$RUN_DIR" "$TIMING"' EXIT

phase() {
  local name=$1 start rc=0
  shift
  printf '\n=== %s\n' "$name"
  start=$(date +%s.%N)
  "$@" || rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$start" "$(date +%s.%N)" "$rc" >> "$RUN_DIR/phases.tsv"
  return "$rc"
}

phase "bootstrap (packages, venv, bao, SPIRE, MinIO, lab rootfs)" scripts/bootstrap.sh
phase "ansible-lint (production profile)" $VENV/ansible-lint --profile production
phase "ansible-test sanity" scripts/sanity.sh
phase "collection build and install" scripts/check_build.sh
phase "unit tests" $VENV/pytest -q tests/unit
phase "integration tests (real OpenBao and SPIRE, lab hosts, real ansible-playbook)" \
  env TRUSTROOT_TEST_TIMING_FILE="$PWD/$RUN_DIR/integration.json" \
  $VENV/pytest -q -n 2 --dist loadfile -p tests.timing.pytest_files tests/integration
phase "molecule scenarios (every role on lab hosts)" scripts/molecule.sh

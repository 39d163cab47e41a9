#!/usr/bin/env bash
# `make test`: every gate, in order of speed; stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv/bin
step() { printf '\n=== %s\n' "$*"; }

step "ansible-lint (production profile)"
$VENV/ansible-lint --profile production
step "ansible-test sanity"
scripts/sanity.sh
step "collection build and install"
scripts/check_build.sh
step "unit tests"
$VENV/pytest -q tests/unit
step "integration tests (real OpenBao and SPIRE, lab hosts, real ansible-playbook)"
$VENV/pytest -q -n 2 --dist loadfile tests/integration
step "molecule scenarios (every role, and the whole stack, on lab hosts)"
scripts/molecule.sh

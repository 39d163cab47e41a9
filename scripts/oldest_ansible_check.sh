#!/usr/bin/env bash
# The oldest ansible-core that meta/runtime.yml's requires_ansible claims must run the collection: its unit tests
# and real playbooks of its modules against a real OpenBao (tests/integration/test_vault_init.py and
# test_vault_status_info.py, whose ansible-playbook comes from this virtualenv). The virtualenv is kept under
# .cache/oldest-ansible/<version>/ and made again only when the pin or requirements.txt changes.
set -euo pipefail
cd "$(dirname "$0")/.."

ANSIBLE_CORE=2.16.19   # the newest patch of the oldest minor requires_ansible allows
PYTHON=${OLDEST_ANSIBLE_PYTHON:-python3.11}   # ansible-core 2.16 runs on Python 3.10-3.12
VENV=.cache/oldest-ansible/$ANSIBLE_CORE
log() { printf '[oldest-ansible] %s\n' "$*"; }

# The pin and the claim must name the same minor: a raised claim without a raised pin (or the reverse) fails here.
claim=$(sed -n 's/^requires_ansible: *["'\'']\{0,1\}>=\([0-9.]*\)["'\'']\{0,1\} *$/\1/p' meta/runtime.yml)
if [ -z "$claim" ]; then
  log "FAIL: meta/runtime.yml has no requires_ansible of the form \">=X.Y.Z\""; exit 1
fi
if [ "${claim%.*}" != "${ANSIBLE_CORE%.*}" ]; then
  log "FAIL: requires_ansible claims >=$claim but this check pins ansible-core $ANSIBLE_CORE"; exit 1
fi

want=$(printf '%s\n' "$ANSIBLE_CORE" "$PYTHON" | cat - requirements.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.stamp" 2>/dev/null)" != "$want" ]; then
  log "creating $VENV (ansible-core $ANSIBLE_CORE, $PYTHON)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "ansible-core==$ANSIBLE_CORE" pytest==9.2.0 -r requirements.txt
  echo "$want" > "$VENV/.stamp"
fi
version=$("$VENV/bin/ansible" --version)   # whole output: `| head -1` would break its pipe
version=${version%%$'\n'*}
case "$version" in
  *"core $ANSIBLE_CORE]"*) log "$version" ;;
  *) log "FAIL: $VENV holds '$version', not ansible-core $ANSIBLE_CORE"; exit 1 ;;
esac

failed=()
log "unit tests under ansible-core $ANSIBLE_CORE"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/unit || failed+=("unit tests")

# The integration tests run in .venv's pytest (xdist gives the worker its own network namespace); only the
# ansible-playbook they start, and the Python its modules run with, come from $VENV.
log "real playbooks against OpenBao with ansible-core $ANSIBLE_CORE"
TRUSTROOT_ANSIBLE_BIN=$PWD/$VENV/bin .venv/bin/python -m pytest -q -n 1 -p no:cacheprovider \
  tests/integration/test_vault_init.py tests/integration/test_vault_status_info.py || failed+=("integration tests")

if [ ${#failed[@]} -gt 0 ]; then
  log "FAIL under ansible-core $ANSIBLE_CORE: ${failed[*]}"; exit 1
fi
log "OK: ansible-core $ANSIBLE_CORE (requires_ansible >=$claim) runs the unit tests and the playbooks"

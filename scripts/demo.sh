#!/usr/bin/env bash
# `make demo`: the whole stack on lab hosts of this machine (systemd-nspawn, a bridge of its own):
# 3 OpenBao nodes, 1 SPIRE server, 2 SPIRE agent hosts. Installs with playbooks/install.yml (the keys go
# to an age-encrypted file), registers a demo workload, shows it fetching its SVID, prints health.
# Run it again: nothing changes, and it says so. `make demo-down` removes the lab.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=$ROOT/.venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$ROOT/.cache/collections
export ANSIBLE_PIPELINING=1 ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_DISPLAY_SKIPPED_HOSTS=0
export ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-$([ -t 1 ] && echo 1 || echo 0)}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "${1:-}" = down ]; then
  python -m tests.lab.stack down --name demo
  echo "demo lab removed"
  exit 0
fi

say "Lab hosts (systemd-nspawn on this machine)"
info=$(python -m tests.lab.stack up --name demo)
inventory=$(python -c 'import json,sys; print(json.load(sys.stdin)["inventory"])' <<<"$info")
vars=$(python -c 'import json,sys; print(json.load(sys.stdin)["vars"])' <<<"$info")
files=$(python -c 'import json,sys; print(json.load(sys.stdin)["files"])' <<<"$info")
ssh_config=$(python -c 'import json,sys; print(json.load(sys.stdin)["ssh_config"])' <<<"$info")
python -c 'import json,sys; [print("  %-14s %s" % h) for h in json.load(sys.stdin)["hosts"].items()]' <<<"$info"

log=$files/install.log
say "Install: OpenBao raft cluster (init, unseal), SPIRE server, agents, registration"
ansible-playbook trustroot.ops.install -i "$inventory" -e "@$vars" "$@" | tee "$log"
changed=$(awk '/^PLAY RECAP/{r=1;next} r&&/changed=/{sub(/.*changed=/,"");s+=$1} END{print s+0}' "$log")

say "A workload on each agent host fetches its X.509 SVID"
ansible-playbook scripts/demo/workload.yml -i "$inventory" -e "@$vars" | sed -n '/TASK \[What the workload received\]/,/^PLAY RECAP/p' | grep -v '^PLAY RECAP'

say "Health"
ansible-playbook trustroot.ops.health -i "$inventory" -e "@$vars" | sed -n '/TASK \[Health\]/,/^$/p' | sed '1d'

if [ "$changed" = 0 ]; then
  say "Everything was already in place: install changed nothing (changed=0 on every host)."
else
  say "Install made $changed changes. Run 'make demo' again: it finds everything in place and changes nothing."
fi
cat <<EOT
Inventory:    $inventory
Variables:    $vars
Key material: ${files}/vault-init.json.age (age identity ${files}/operator.agekey)
SSH:          ssh -F $ssh_config spire-agent1
'make demo-down' removes the lab.
EOT

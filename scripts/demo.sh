#!/usr/bin/env bash
# `make demo`: a 3-node OpenBao raft cluster on loopback, brought up by the collection's own modules
# (init with the keys in an age-encrypted file, unseal every node, snapshot from the leader, status).
# A second run finds everything done and changes nothing. `make demo-down` stops the servers.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LAB=$ROOT/.lab/demo-vault
export PATH=$ROOT/.venv/bin:$ROOT/.cache/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$ROOT/.cache/collections
export ANSIBLE_PYTHON_INTERPRETER=$ROOT/.venv/bin/python
export ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_INVENTORY_UNPARSED_WARNING=0

if [ "${1:-}" = down ]; then
  python -m tests.lab.openbao down --dir "$LAB"
  echo "demo servers stopped; state kept in $LAB (rm -rf it to start over)"
  exit 0
fi

state=$(python -m tests.lab.openbao up --dir "$LAB" --nodes 3)
if ! grep -q '"reused": true' <<<"$state"; then
  # New servers mean new, empty storage: material and snapshot of an earlier lab no longer apply.
  rm -f "$LAB/init.json.age" "$LAB/raft.snap" "$LAB/raft.snap.json"
fi
[ -f "$LAB/operator.agekey" ] || age-keygen -o "$LAB/operator.agekey" 2>/dev/null
recipient=$(age-keygen -y "$LAB/operator.agekey")
python - "$LAB" "$recipient" <<'PY'
import json, sys
lab, recipient = sys.argv[1], sys.argv[2]
state = json.load(open(lab + '/lab.json'))
json.dump({
    'vault_nodes': [n['url'] for n in state['nodes']],
    'vault_material_path': lab + '/init.json.age',
    'vault_age_recipients': [recipient],
    'vault_age_identity': lab + '/operator.agekey',
    'vault_snapshot_path': lab + '/raft.snap',
    'vault_secret_shares': 5,
    'vault_secret_threshold': 3,
}, open(lab + '/vars.json', 'w'), indent=2)
PY

echo "OpenBao lab: $(python -c "import json;print(', '.join(n['url'] for n in json.load(open('$LAB/lab.json'))['nodes']))")"
ansible-playbook -i localhost, -c local trustroot.ops.vault_bootstrap -e "@$LAB/vars.json" "$@"
cat <<EOT

Demo done. Key material (age-encrypted): $LAB/init.json.age, identity $LAB/operator.agekey
Run 'make demo' again: every task reports ok, changed=0. 'make demo-down' stops the servers.
EOT

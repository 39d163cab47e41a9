#!/usr/bin/env bash
# Builds the collection tarball the way a release does (ansible-galaxy collection build, galaxy.yml's
# build_ignore) and imports it with galaxy-importer as Galaxy does, ansible-lint included
# (scripts/galaxy-importer.cfg). Fails on an import error and on any warning or error line in the import log,
# which is where the importer puts ansible-lint findings.
#   scripts/galaxy_check.sh          tarball in .cache/dist/galaxy-check, log in .cache/dist/galaxy-check/import.log
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$PWD/.venv/bin
OUT=.cache/dist/galaxy-check
export PATH=$VENV:$PATH   # the importer runs ansible-doc and ansible-lint from PATH
export GALAXY_IMPORTER_CONFIG=$PWD/scripts/galaxy-importer.cfg

rm -rf "$OUT" && mkdir -p "$OUT"
"$VENV/ansible-galaxy" collection build --force --output-path "$OUT" >/dev/null
tarball=$(ls "$OUT"/trustroot-ops-*.tar.gz)

rc=0
# The importer writes importer_result.json into its working directory: keep it next to the tarball.
# A home of its own: the importer's ansible-lint also looks in ~/.ansible/collections, where an older trustroot.ops
# (installed there by another tool) would stand in for the one being imported.
mkdir -p "$OUT/home"
(cd "$OUT" && HOME=$PWD/home "$VENV/python" -m galaxy_importer.main "$PWD/$(basename "$tarball")" >import.log 2>&1) || rc=$?
findings=$(grep -E '^(WARNING|ERROR)' "$OUT/import.log" || true)
if [ "$rc" -ne 0 ] || [ -n "$findings" ] || ! grep -q 'Importer processing completed successfully' "$OUT/import.log"; then
  echo "galaxy_check: galaxy-importer rejected $tarball (exit $rc):" >&2
  grep -v -E '^(Loading|$)' "$OUT/import.log" >&2 || true
  exit 1
fi
echo "galaxy_check: $tarball imports cleanly (galaxy-importer $("$VENV/python" -c 'import importlib.metadata as m; print(m.version("galaxy-importer"))'), ansible-lint on)"

#!/usr/bin/env bash
# The collection docs the way community collections check them:
#   1. docs/docsite/rst (the extra docs) is what scripts/docs_rst.py renders from the Markdown guides;
#   2. antsibull-docs lint-collection-docs --plugin-docs: modules, filters, role argument specs, extra docs, links;
#   3. the docs site: antsibull-docs sphinx-init + antsibull-docs collection + sphinx-build -W --keep-going into
#      .cache/docs-site (index.html), every warning an error. The site is built offline: the intersphinx
#      inventories of the generated conf.py (docs.python.org, docs.ansible.com, ...) fall back to small local
#      ones (.cache/docs-build/*.inv) naming the labels the generated pages use, so an unreachable host is not a
#      warning and every warning left comes from the collection.
#   scripts/docs_check.sh          all three
#   scripts/docs_check.sh build    only the site (make docs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=$ROOT/.venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$ROOT/.cache/collections
COLL=$ROOT/.cache/collections/ansible_collections/trustroot/ops
BUILD=$ROOT/.cache/docs-build
SITE=$ROOT/.cache/docs-site
failed=()

if [ "${1:-}" != build ]; then
  echo "docs_check: extra docs up to date with the Markdown"
  python scripts/docs_rst.py --check || failed+=("extra docs out of date (run scripts/docs_rst.py)")
  echo "docs_check: antsibull-docs lint-collection-docs --plugin-docs"
  # It lints the collection it finds on the collections path, from the collection's own directory.
  (cd "$COLL" && antsibull-docs lint-collection-docs --plugin-docs .) || failed+=("antsibull-docs lint-collection-docs")
fi

echo "docs_check: docs site into ${SITE#"$ROOT"/}"
rm -rf "$BUILD" && mkdir -p -m 0755 "$BUILD"   # antsibull-docs wants a directory only its owner may write
antsibull-docs sphinx-init --use-current --squash-hierarchy --fail-on-error --dest-dir "$BUILD" \
  --project trustroot.ops --title trustroot.ops trustroot.ops >/dev/null
python - "$BUILD" <<'PY'
import sys, zlib
# Offline fallbacks of conf.py's intersphinx_mapping ('../<name>.inv' from rst/): the labels of
# docs.ansible.com that antsibull-docs' generated pages refer to; python and jinja2 are not referred to.
base = 'https://docs.ansible.com/projects/ansible/devel/'
labels = {'ansible_devel': [('common_return_values', 'reference_appendices/common_return_values.html#common-return-values', 'Return Values'),
                            ('ansible_configuration_settings', 'reference_appendices/config.html#ansible-configuration-settings', 'Ansible Configuration Settings')],
          'python2': [], 'python3': [], 'jinja2': []}
for name, entries in labels.items():
    body = ''.join('%s std:label -1 %s %s\n' % e for e in entries).encode()
    with open('%s/%s.inv' % (sys.argv[1], name), 'wb') as f:
        f.write(b'# Sphinx inventory version 2\n# Project: %s\n# Version: \n'
                b'# The remainder of this file is compressed using zlib.\n' % name.encode() + zlib.compress(body))
PY
mkdir -p -m 0700 "$BUILD/rst"
if ! antsibull-docs --config-file "$BUILD/antsibull-docs.cfg" collection --cleanup everything --fail-on-error \
    --use-current --squash-hierarchy --dest-dir "$BUILD/rst" trustroot.ops >"$BUILD/antsibull-docs.log" 2>&1; then
  cat "$BUILD/antsibull-docs.log" >&2
  failed+=("antsibull-docs collection")
else
  rm -rf "$SITE"
  if ! sphinx-build -q -b html -W --keep-going -c "$BUILD" -d "$BUILD/doctrees" -w "$BUILD/sphinx-warnings.log" \
      "$BUILD/rst" "$SITE"; then
    failed+=("sphinx-build: $(grep -c WARNING "$BUILD/sphinx-warnings.log" || true) warning(s), listed above and in ${BUILD#"$ROOT"/}/sphinx-warnings.log")
  fi
fi

if [ ${#failed[@]} -gt 0 ]; then
  printf 'docs_check: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "docs_check: OK (site: ${SITE#"$ROOT"/}/index.html)"

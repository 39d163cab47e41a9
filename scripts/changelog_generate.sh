#!/usr/bin/env bash
# CHANGELOG.md from changelogs/ with antsibull-changelog. Released versions come from changelogs/changelog.yaml
# (`antsibull-changelog release` at release time, which also lists the new modules, plugins and roles from
# their own docs: version_added). The version in galaxy.yml, while it is not released yet, is rendered from the
# fragments by the same release step run on a throw-away copy, and marked "(unreleased)".
#   scripts/changelog_generate.sh [OUTPUT]   (default CHANGELOG.md; scripts/changelog_check.py compares the two)
set -euo pipefail
output=${1:+$(realpath -m "$1")}
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=$ROOT/.venv/bin:$PATH   # antsibull-changelog and the ansible-doc it reads plugins with
version=$(sed -n 's/^version: *//p' galaxy.yml)
output=${output:-$PWD/CHANGELOG.md}

if python3 -c 'import sys, yaml; sys.exit(0 if sys.argv[1] in (yaml.safe_load(open("changelogs/changelog.yaml"))["releases"] or {}) else 1)' \
    "$version" 2>/dev/null; then
  antsibull-changelog generate --output "$output" --output-format md
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git ls-files -co --exclude-standard -- galaxy.yml meta plugins roles playbooks changelogs | tar -cf - -T - | tar -xf - -C "$tmp"
(cd "$tmp" && antsibull-changelog release --version "$version" >/dev/null)
python3 - "$version" "$tmp/CHANGELOG.md" "$output" <<'PY'
import sys
version, source, target = sys.argv[1:]
shown = 'v' + version.replace('.', '\\.')  # the Markdown writer escapes dots
text = open(source).read()
marked = text.replace('## %s\n' % shown, '## %s (unreleased)\n' % shown, 1).replace('>%s</a>' % shown, '>%s (unreleased)</a>' % shown, 1)
if marked == text:
    sys.exit('changelog_generate: no section for %s in the generated changelog' % version)
open(target, 'w').write(marked)
PY

#!/usr/bin/env bash
# The test command: ./scripts/test.sh [pytest args...]
# Installs what is missing (scripts/setup.sh --test), then runs pytest from the repository
# root; the exit code is pytest's.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

now() { local t=${EPOCHREALTIME:-$(date +%s)}; printf %s "${t/,/.}"; }
started=$(now)
elapsed() { awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

bash scripts/setup.sh --test

# Playwright drives Debian's /usr/bin/chromium (set by the tests); never download a browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

printf '==> running tests\n'
status=0
.venv/bin/python -m pytest "$@" || status=$?
printf '==> tests finished in %s s (pytest exit code %d)\n' "$(elapsed)" "$status"
exit "$status"

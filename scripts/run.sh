#!/usr/bin/env bash
# The DEMO: ./scripts/run.sh
# Installs what is missing (scripts/setup.sh), brings the database schema up to date, loads
# the demo data once, then serves the app on http://${HOST:-127.0.0.1}:${PORT:-5000}/.
# Not a deployment: it lets mail accounts reach local servers (the outbound guard off) and
# its users share a published password. README.md, "Deploying", says how to run it for real.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

HOST=${HOST:-127.0.0.1}
PORT=${PORT:-5000}
export MAIL_POLLER=${MAIL_POLLER:-thread}
export MAIL_ALLOW_LOCAL_SERVERS=${MAIL_ALLOW_LOCAL_SERVERS:-1}

printf '==> updating the database schema\n'
.venv/bin/flask --app app db upgrade
printf '==> loading demo data (if not loaded yet)\n'
# Refused (and said so) once the database has users: then its data is kept as it is.
.venv/bin/flask --app app demo || true

printf '\nCRM Mail Add-on DEMO running at http://%s:%s/\n' "$HOST" "$PORT"
printf 'This is a demo, not for production: local mail servers allowed, demo users with a published\n'
printf 'password. To deploy, follow "Deploying" in README.md (never this script).\n\n'
# gunicorn, one process with threads: the embedded SQLite and the poller thread want one process.
exec .venv/bin/gunicorn --workers 1 --threads 8 --bind "$HOST:$PORT" --access-logfile - "app:create_app()"

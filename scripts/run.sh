#!/usr/bin/env bash
# The run command: ./scripts/run.sh
# Installs what is missing (scripts/setup.sh), brings the database schema up to date, loads
# the demo data once, then serves the app on http://${HOST:-127.0.0.1}:${PORT:-5000}/.
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
.venv/bin/flask --app app demo

printf '\nCRM Mail Add-on running at http://%s:%s/\n\n' "$HOST" "$PORT"
# gunicorn, one process with threads: the embedded SQLite and the poller thread want one process.
exec .venv/bin/gunicorn --workers 1 --threads 8 --bind "$HOST:$PORT" --access-logfile - "app:create_app()"

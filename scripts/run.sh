#!/usr/bin/env bash
# The DEMO: ./scripts/run.sh
# Also starts the demo's local mail sink (scripts/mail_sink.py) that Reply and Send Email deliver to.
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
export DEMO_MAIL_SINK_PORT=${DEMO_MAIL_SINK_PORT:-2525}

printf '==> updating the database schema\n'
.venv/bin/flask --app app db upgrade
printf '==> loading demo data (if not loaded yet)\n'
# Refused (and said so) once the database has users: then its data is kept as it is.
.venv/bin/flask --app app demo || true

# The demo's mail sink: the demo users' Send Mail As identities send to it, so Reply and Send
# Email really send; it keeps each message in instance/demo-sink/ and nothing leaves the machine.
.venv/bin/python scripts/mail_sink.py --host 127.0.0.1 --port "$DEMO_MAIL_SINK_PORT" &
SINK_PID=$!
trap 'kill "$SINK_PID" 2>/dev/null || true' EXIT

printf '\nCRM Mail Add-on DEMO running at http://%s:%s/\n' "$HOST" "$PORT"
printf 'This is a demo, not for production: local mail servers allowed, demo users with a published\n'
printf 'password. To deploy, follow "Deploying" in README.md (never this script).\n'
printf 'Mail sent in the demo goes to the local mail sink on 127.0.0.1:%s (a line below for each;\n' "$DEMO_MAIL_SINK_PORT"
printf 'the messages in instance/demo-sink/): nothing leaves the machine.\n\n'
# gunicorn, one process with threads: the embedded SQLite and the poller thread want one process.
# Not exec: the trap above stops the sink when the app stops.
.venv/bin/gunicorn --workers 1 --threads 8 --bind "$HOST:$PORT" --access-logfile - "app:create_app()"

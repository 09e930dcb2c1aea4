#!/usr/bin/env bash
# Idempotent setup, used by scripts/run.sh and scripts/test.sh.
#   scripts/setup.sh          what running the app needs: .venv with requirements.txt
#   scripts/setup.sh --test   also the test servers (Dovecot, Mailutils pop3d, Chromium, PostgreSQL) and
#                             requirements-dev.txt
# Debian packages are installed only when missing; pip runs only when the requirement files
# changed since the last install (stamp file .venv/.requirements-<sha256>).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

with_test=0
for arg in "$@"; do
    case "$arg" in
        --test) with_test=1 ;;
        -h | --help)
            sed -n '2,7s/^# \{0,1\}//p' scripts/setup.sh
            exit 0
            ;;
        *)
            echo "setup.sh: unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

say() { printf '==> %s\n' "$*"; }
die() {
    printf 'setup.sh: %s\n' "$*" >&2
    exit 1
}

# One setup at a time (say run.sh and test.sh started together): lock this script's own file.
if command -v flock >/dev/null 2>&1; then
    exec 9<scripts/setup.sh
    flock 9
fi

PYTHON=${PYTHON:-python3}
LOG=$(mktemp "${TMPDIR:-/tmp}/crm-setup.XXXXXX")
trap 'rm -f "$LOG"' EXIT

# Run a command quietly; on failure show its output and stop.
quiet() {
    if ! "$@" >"$LOG" 2>&1; then
        tail -n 40 "$LOG" >&2
        die "failed: $*"
    fi
}

# --- Debian packages ---------------------------------------------------------------------
missing=()
command -v "$PYTHON" >/dev/null 2>&1 || missing+=(python3)
if [[ ! -x .venv/bin/python ]] && ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
if ((with_test)); then
    [[ -x /usr/sbin/dovecot ]] || missing+=(dovecot-pop3d)
    [[ -x /usr/sbin/pop3d ]] || missing+=(mailutils-pop3d)
    [[ -x /usr/bin/chromium ]] || missing+=(chromium)
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
fi

if ((${#missing[@]})); then
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 ||
            die "need root (or sudo) to install: ${missing[*]}"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "apt-get not found; install these yourself: ${missing[*]}"
    say "installing Debian packages: ${missing[*]}"
    quiet "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    quiet "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q "${missing[@]}"
fi

# --- virtualenv --------------------------------------------------------------------------
if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c '' >/dev/null 2>&1; then
    say "creating .venv"
    quiet "$PYTHON" -m venv --clear .venv
fi

# --- Python packages ---------------------------------------------------------------------
# requirements-dev.txt includes requirements.txt (-r), so a test install covers a run install.
run_files=(requirements.txt)
test_files=(requirements.txt requirements-dev.txt)
stamp_for() { printf '.venv/.requirements-%s' "$(cat "$@" | sha256sum | cut -d' ' -f1)"; }
run_stamp=$(stamp_for "${run_files[@]}")
test_stamp=$(stamp_for "${test_files[@]}")

if ((with_test)); then
    req=requirements-dev.txt stamp=$test_stamp
else
    req=requirements.txt stamp=$run_stamp
fi

if [[ -e $stamp ]]; then
    say "Python packages up to date ($req)"
else
    say "installing Python packages from $req (first run takes a minute)"
    quiet env PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
        .venv/bin/python -m pip install -q -r "$req"
    rm -f .venv/.requirements-*
    touch "$stamp"
    if ((with_test)); then touch "$run_stamp"; fi
fi
say "setup done"

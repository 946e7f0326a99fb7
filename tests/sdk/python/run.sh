#!/usr/bin/env bash
# Runs the official Authsignal Python SDK (authsignal 4.1.0) against a fresh latchkey-local.
# Usage: bash tests/sdk/python/run.sh [extra pytest arguments]
# Exit status: pytest's (or 1 when the server cannot be started).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
repo=$(pwd)

port=8798
secret=lk_5d4c3b2a19081726_sdk-test-secret-key-0123456789
venv="$repo/.venv-sdk"   # ignored by the repo's /.venv-* rule

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/sdk/python/requirements.txt

if curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
    echo "run.sh: something already answers on 127.0.0.1:$port; stop it first" >&2
    exit 1
fi

work=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -m 700 "$work/data"
# `cargo run` replaces itself with the server binary (exec), so this pid is the server's.
LATCHKEY_DATA_DIR="$work/data" \
LATCHKEY_LISTEN="127.0.0.1:$port" \
LATCHKEY_DEV_TENANT_ID=sdk-tenant \
LATCHKEY_DEV_SECRET_KEY="$secret" \
    cargo run -q -p latchkey-local --locked >"$work/server.log" 2>&1 &
server_pid=$!

echo "run.sh: waiting for latchkey-local on 127.0.0.1:$port (builds first if needed)..."
deadline=$((SECONDS + 300))
until curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "run.sh: latchkey-local exited before it became healthy; its output:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "run.sh: latchkey-local not healthy after 5 minutes; its output:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 1
done

status=0
LATCHKEY_BASE_URL="http://127.0.0.1:$port/v1" \
LATCHKEY_SECRET_KEY="$secret" \
PYTHONDONTWRITEBYTECODE=1 \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/sdk/python "$@" || status=$?

if ((status != 0)); then
    echo "run.sh: server log tail:" >&2
    tail -n 40 "$work/server.log" >&2 || true
fi
exit "$status"

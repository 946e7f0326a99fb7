#!/usr/bin/env bash
# Browser end-to-end test: the /demo page signs up and signs in with a passkey in Chromium
# (virtual authenticator), against a fresh latchkey-local.
# Usage: bash tests/e2e/run.sh        (from anywhere; installs Chromium with apt-get if missing)
# Exit status: passkeys.mjs's (or 1 when the server cannot be started).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

port=8796

if [[ ! -x /usr/bin/chromium ]]; then
    echo "run.sh: installing Chromium..."
    apt-get update && apt-get install -y chromium
fi

if [[ -f tests/e2e/package-lock.json ]]; then
    npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
else
    npm install --prefix tests/e2e --no-audit --no-fund --loglevel=error
fi

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
BASE="http://localhost:$port" node tests/e2e/passkeys.mjs || status=$?

if ((status != 0)); then
    echo "run.sh: server log tail:" >&2
    tail -n 40 "$work/server.log" >&2 || true
fi
exit "$status"

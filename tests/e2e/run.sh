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

. tests/lib/local_server.sh
start_local_server "$port"

status=0
BASE="http://localhost:$port" node tests/e2e/passkeys.mjs || status=$?

if ((status != 0)); then
    local_server_log_tail
fi
exit "$status"

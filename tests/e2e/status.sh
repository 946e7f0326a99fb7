#!/usr/bin/env bash
# Browser end-to-end test of the public status page: starts a fresh latchkey-local, mints an
# operator token with latchkey-admin on the same data folder, opens an incident through the
# operator API, and checks /status in Chromium (tests/e2e/status.mjs), with screenshots.
# Usage: bash tests/e2e/status.sh   (from anywhere; installs Chromium with apt-get if missing)
# Screenshots go to $E2E_ARTIFACTS (not LATCHKEY_*: latchkey-local refuses unknown settings; default: a new /tmp/latchkey-status-e2e.* folder).
# Exit status: status.mjs's (or 1 when the server cannot be started).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

port=8797

if [[ ! -x /usr/bin/chromium ]]; then
    echo "status.sh: installing Chromium..."
    apt-get update && apt-get install -y chromium
fi

if [[ -f tests/e2e/package-lock.json ]]; then
    npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
else
    npm install --prefix tests/e2e --no-audit --no-fund --loglevel=error
fi

. tests/lib/local_server.sh
start_local_server "$port"

# The embedded store is one SQLite file (WAL): latchkey-admin may write it while the server runs.
token=$(LATCHKEY_DATA_DIR="$work/data" cargo run -q -p latchkey-admin --locked -- \
    operator create --name e2e | sed -n 's/^token: *\(lko_[^ ]*\).*/\1/p')
if [[ -z "$token" ]]; then
    echo "status.sh: latchkey-admin did not print an operator token" >&2
    exit 1
fi

artifacts=${E2E_ARTIFACTS:-$(mktemp -d /tmp/latchkey-status-e2e.XXXXXX)}
echo "status.sh: screenshots in $artifacts"

status=0
BASE="http://localhost:$port" TOKEN="$token" ARTIFACTS="$artifacts" node tests/e2e/status.mjs || status=$?

if ((status != 0)); then
    local_server_log_tail
fi
exit "$status"

#!/usr/bin/env bash
# Browser end-to-end test with Authsignal's official browser SDK (@authsignal/browser 1.16.0):
# security key enroll + verify, then passkey sign-up, usernameless sign-in and sign-in with a
# track token, in Chromium (CDP
# virtual authenticators), against a fresh latchkey-local with a fixed dev tenant and key.
# Usage: bash tests/e2e/sdk_browser.sh   (from anywhere; installs Chromium with apt-get if missing)
# Exit status: sdk_browser.mjs's (or 1 when the server cannot be started).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

port=8797

if [[ ! -x /usr/bin/chromium ]]; then
    echo "sdk_browser.sh: installing Chromium..."
    apt-get update && apt-get install -y chromium
fi

if [[ -f tests/e2e/package-lock.json ]]; then
    npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
else
    npm install --prefix tests/e2e --no-audit --no-fund --loglevel=error
fi

# A throwaway dev tenant for this run: fixed id, fresh random secret key (lk_<16 hex>_<secret>).
hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
tenant_id=sdk-e2e
secret_key="lk_$(hex 8)_$(hex 24)"

. tests/lib/local_server.sh
start_local_server "$port" LATCHKEY_DEV_TENANT_ID="$tenant_id" LATCHKEY_DEV_SECRET_KEY="$secret_key"

status=0
BASE="http://localhost:$port" TENANT_ID="$tenant_id" SECRET_KEY="$secret_key" \
    node tests/e2e/sdk_browser.mjs || status=$?

if ((status != 0)); then
    local_server_log_tail
fi
exit "$status"

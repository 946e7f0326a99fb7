#!/usr/bin/env bash
# Runs Authsignal's official Node SDK (@authsignal/node 2.21.0) against a fresh latchkey-local:
# the Server API methods the Python SDK 4.1.0 lacks (queryUsers).
# Usage: bash tests/sdk/node/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
port=8795
secret=lk_0123456789abcdef_node-sdk-test-secret-key-0123456789
npm ci --prefix tests/sdk/node --no-audit --no-fund --loglevel=error
. tests/lib/local_server.sh
start_local_server "$port" LATCHKEY_DEV_TENANT_ID=node-sdk-tenant LATCHKEY_DEV_SECRET_KEY="$secret"
status=0
LKCLI_BASE_URL="http://127.0.0.1:$port/v1" LKCLI_SECRET_KEY="$secret" \
  node tests/sdk/node/query_users.mjs || status=$?
if ((status != 0)); then
    local_server_log_tail
fi
exit "$status"

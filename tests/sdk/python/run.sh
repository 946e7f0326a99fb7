#!/usr/bin/env bash
# Runs the official Authsignal Python SDK (authsignal 4.1.0) against a fresh latchkey-local, and
# the Client API's one-time codes with mail read from its outbox (test_client_otp.py).
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

. tests/lib/local_server.sh
# The suite presents ~30 wrong keys in a second on purpose (every call with three kinds of
# wrong key): above the default limit of 20 a minute, which the Rust suite tests.
start_local_server "$port" LATCHKEY_DEV_TENANT_ID=sdk-tenant LATCHKEY_DEV_SECRET_KEY="$secret" \
  LATCHKEY_KEY_FAILURES_PER_CLIENT_PER_MINUTE=1000

# A management key (admin role) for the tenant, minted with latchkey-admin on the same data
# folder (one SQLite file in WAL mode: it may be written while the server runs).
mkey=$(LATCHKEY_DATA_DIR="$work/data" cargo run -q -p latchkey-admin --locked -- \
    management-key create --tenant sdk-tenant --role admin --name sdk-tests --days 1 |
    sed -n 's/^management key: *\(lkm_[^ ]*\).*/\1/p')
if [[ -z "$mkey" ]]; then
    echo "run.sh: latchkey-admin did not print a management key" >&2
    exit 1
fi

status=0
LKCLI_MANAGEMENT_KEY="$mkey" \
LKCLI_BASE_URL="http://127.0.0.1:$port/v1" \
LKCLI_SECRET_KEY="$secret" \
E2E_OUTBOX="$work/data/outbox" \
PYTHONDONTWRITEBYTECODE=1 \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/sdk/python "$@" || status=$?

if ((status != 0)); then
    local_server_log_tail
fi
exit "$status"

#!/usr/bin/env bash
# Browser end-to-end test of the console (tests/e2e/console.mjs): a fresh latchkey-local (which
# makes the development tenant and prints its owner's one-time console invite link), an
# operator invite minted with latchkey-admin on the same data folder, Authsignal's Python SDK in
# .venv-sdk, Debian's Chromium with virtual authenticators.
# Usage: bash tests/e2e/console.sh   (installs Chromium with apt-get if missing)
# Screenshots (every page, laptop and phone widths) and the accessibility report go to
# $E2E_ARTIFACTS (default: target/e2e/console).
# Exit status: console.mjs's (or 1 when the server cannot be started).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=$(pwd)
port=8795

if [[ ! -x /usr/bin/chromium ]]; then
    echo "console.sh: installing Chromium..."
    apt-get update && apt-get install -y chromium
fi
npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error

venv="$repo/.venv-sdk"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/sdk/python/requirements.txt

. tests/lib/local_server.sh
# No LATCHKEY_DEV_SECRET_KEY: the development tenant is new, so its owner's invite is printed.
start_local_server "$port"

invite_url=$(sed -n 's|^ *\(http://localhost:[0-9]*/console#/accept/lki_[A-Za-z0-9_-]*\).*|\1|p' "$work/server.log" | head -n 1)
if [[ -z "$invite_url" ]]; then
    echo "console.sh: latchkey-local printed no console invite link" >&2
    cat "$work/server.log" >&2
    exit 1
fi
operator_invite=$(LATCHKEY_DATA_DIR="$work/data" cargo run -q -p latchkey-admin --locked -- \
    invite create --operator | sed -n 's/^invite: *\(lki_[^ ]*\).*/\1/p')
if [[ -z "$operator_invite" ]]; then
    echo "console.sh: latchkey-admin did not print an operator invite" >&2
    exit 1
fi

# A second tenant for the same owner, to delete from the console at the end.
LATCHKEY_DATA_DIR="$work/data" cargo run -q -p latchkey-admin --locked -- tenant create \
    --id spare-tenant --name Spare --rp-id localhost --origin "http://localhost:$port" >/dev/null
spare_invite=$(LATCHKEY_DATA_DIR="$work/data" cargo run -q -p latchkey-admin --locked -- \
    invite create --tenant spare-tenant --role owner | sed -n 's/^invite: *\(lki_[^ ]*\).*/\1/p')

artifacts=${E2E_ARTIFACTS:-$repo/target/e2e/console}
rm -rf "$artifacts"
mkdir -p "$artifacts"
echo "console.sh: screenshots in $artifacts"

status=0
BASE="http://localhost:$port" INVITE_URL="$invite_url" OPERATOR_INVITE="$operator_invite" SPARE_INVITE="$spare_invite" \
PYTHON="$venv/bin/python" ARTIFACTS="$artifacts" PYTHONDONTWRITEBYTECODE=1 \
    node tests/e2e/console.mjs || status=$?

if ((status != 0)); then
    local_server_log_tail
fi
exit "$status"

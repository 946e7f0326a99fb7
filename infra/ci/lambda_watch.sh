#!/usr/bin/env bash
# The README's `cargo lambda watch` section, run as written: the functions as Lambdas on this
# machine, on the embedded adapters, one request to each HTTP function (2xx expected) and one
# invoke of the backup function; then the watcher is stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
if [ ! -x .venv-lambda/bin/cargo-lambda ] || ! .venv-lambda/bin/python -c 'import ziglang' 2>/dev/null; then
  python3 -m venv .venv-lambda
  .venv-lambda/bin/pip install -q cargo-lambda ziglang
fi
export PATH="$root/.venv-lambda/bin:$PATH"

port=${WATCH_PORT:-9000}
data=$(mktemp -d)
log=$root/target/lambda-watch.log
mkdir -p "$root/target"
# A busy port makes `cargo lambda watch` exit 0 without a word: refuse it here instead.
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "port $port is in use; set WATCH_PORT"
  exit 1
fi

# As in the README: the data folder of the embedded adapters, then the watcher with each
# function's `local` feature (the embedded adapters).
export LATCHKEY_DATA_DIR=$data LATCHKEY_LOG=warn
cargo lambda watch -A 127.0.0.1 -P "$port" --features local >"$log" 2>&1 &
watch_pid=$!
stop() {
  kill -INT "$watch_pid" 2>/dev/null || true
  wait "$watch_pid" 2>/dev/null || true
  rm -rf "$data"
}
trap stop EXIT

for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$watch_pid" 2>/dev/null || { cat "$log"; echo "cargo lambda watch exited"; exit 1; }
  sleep 0.2
done

base=http://127.0.0.1:$port # plain-http: cargo lambda watch on loopback
fail=0
check() { # what method path: the function compiles on its first request, hence the long timeout
  local what=$1 method=$2 path=$3 code
  code=$(curl -s -o /dev/null -w '%{http_code}' -m 900 -X "$method" "$base$path" || echo 000)
  printf '%-8s %-7s %-60s %s\n' "$what" "$method" "$path" "$code"
  case $code in 2??) ;; *) fail=1 ;; esac
}
check auth GET /lambda-url/latchkey-auth/health
check auth GET /lambda-url/latchkey-auth/openapi.json
# Not a preflight: cargo lambda watch answers OPTIONS itself, without starting the function.
check client GET /lambda-url/latchkey-client/health
check status GET /lambda-url/latchkey-status/status/api/v2/status.json
check status GET /lambda-url/latchkey-status/status
check admin GET /lambda-url/latchkey-admin-api/v1/admin/openapi.json
if cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port "$port" latchkey-backup \
  --data-ascii '{"task":"health"}' >"$root/target/lambda-watch-backup.json" 2>&1; then
  printf '%-8s %-7s %-60s %s\n' backup invoke '{"task":"health"}' ok
else
  cat "$root/target/lambda-watch-backup.json"
  fail=1
fi
# Each answer came from the function itself, which the watcher started.
for f in auth client status backup; do
  grep -q "spawning function instance function=\"latchkey-$f\"" "$log" \
    || { echo "latchkey-$f was never started"; fail=1; }
done
[ "$fail" = 0 ] || { tail -50 "$log"; echo "a function did not answer 2xx under cargo lambda watch"; exit 1; }

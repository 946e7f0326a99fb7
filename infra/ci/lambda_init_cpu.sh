#!/usr/bin/env bash
# Cold start CPU of each HTTP function's release bootstrap beside a hello-world lambda_http
# binary (README "Lambda builds"): the function runs against `cargo lambda watch
# --only-lambda-apis` (the Lambda runtime API, on this machine), with the AWS configuration of
# the stack (no AWS call is made: the SDK clients connect on first use, and an unknown path
# answers the wire 404 without one; `/health` now checks the store, key and secret). Init CPU
# is the process's CPU time once it waits for its first event; first invocation is what one
# such request adds. x86_64 builds, since arm64 ones cannot run here.
#
#   bash infra/ci/lambda_init_cpu.sh [runs]      # default 5 runs per binary; medians printed
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
runs=${1:-5}
port=${CPU_PORT:-9310}
export PATH="$root/.venv-lambda/bin:$PATH"
out=$root/target/lambda-x86

# Each function built in its own crate, as `sam build` does (its features alone).
for f in auth client status; do
  (cd "functions/$f" && cargo lambda build --release --lambda-dir "$out" >/dev/null)
done
h=${HELLO_DIR:-/tmp/latchkey-hello-lambda}
if [ ! -f "$h/Cargo.toml" ]; then
  echo "no hello-world project in $h: run infra/ci/lambda_sizes.sh --hello first"
  exit 1
fi
(cd "$h" && CARGO_TARGET_DIR=${HELLO_TARGET:-/tmp/latchkey-hello-target} \
  cargo lambda build --release --lambda-dir "$h/lambda-x86" >/dev/null)

cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$port" >"$root/target/lambda-cpu-watch.log" 2>&1 &
watch_pid=$!
trap 'kill -INT $watch_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.2
done

cpu_ns() { # CPU time of every thread of a process, in ns (schedstat: finer than clock ticks)
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

measure() { # name bootstrap -> "name init_ms first_ms"
  local name=$1 bin=$2 inits=() firsts=()
  for _ in $(seq 1 "$runs"); do
    env -i PATH=/usr/bin:/bin HOME=/tmp \
      AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 \
      AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt" AWS_LAMBDA_FUNCTION_NAME=_ \
      AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
      AWS_EC2_METADATA_DISABLED=true AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true \
      LATCHKEY_TABLE=latchkey LATCHKEY_KMS_KEY_ID=alias/latchkey LATCHKEY_SECRET_ID=latchkey \
      LATCHKEY_SES=1 LATCHKEY_MAIL_FROM=no-reply@example.com LATCHKEY_LOG=info \
      "$bin" >/dev/null 2>&1 &
    local pid=$!
    sleep 1.5 # init done: the runtime is long-polling for its first event
    local a b
    a=$(cpu_ns "$pid")
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 10 "http://127.0.0.1:$port/lambda-url/_/no-such-route") || true # plain-http: loopback
    case "$code" in 2??|404) ;; *) echo "$name: answered $code" >&2 ;; esac
    sleep 0.5
    b=$(cpu_ns "$pid")
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    inits+=("$a")
    firsts+=("$((b - a))")
  done
  printf '%s %s %s\n' "$name" \
    "$(printf '%s\n' "${inits[@]}" | median)" "$(printf '%s\n' "${firsts[@]}" | median)"
}

printf '%-14s %10s %16s\n' binary "init ms" "first request ms"
{
  measure hello-world "$h/lambda-x86/hello-lambda/bootstrap"
  for f in auth client status; do
    measure "latchkey-$f" "$out/latchkey-$f/bootstrap"
  done
} | while read -r name init first; do
  printf '%-14s %10.2f %16.2f\n' "$name" "$(awk "BEGIN { print $init / 1e6 }")" "$(awk "BEGIN { print $first / 1e6 }")"
done

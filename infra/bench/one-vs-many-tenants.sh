#!/usr/bin/env bash
# Audited writes of one tenant against the same load spread over many tenants: 16 clients
# tracking on one tenant, then 16 tenants with one client each, interleaved, on a fresh
# latchkey-local each time (release build). Prints each run's req/s and p50/p99 (for many
# tenants, the median of the per-tenant p99s and their max) and the ratio of the p99s.
#
#   bash infra/bench/one-vs-many-tenants.sh            # ROUNDS=2 TENANTS=16 EACH=300
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${LATCHKEY_BIN_DIR:-target/release}
[ -x "$bin/latchkey-local" ] && [ -x "$bin/latchkey-load" ] && [ -x "$bin/latchkey-admin" ] ||
  cargo build --release -p latchkey-local -p latchkey-load -p latchkey-admin
rounds=${ROUNDS:-2} tenants=${TENANTS:-16} each=${EACH:-300} port=${PORT:-8794}
key=lk_0123456789abcdef_bench-secret-key-000000000
out=$(mktemp -d)
serve() { # data dir
  LATCHKEY_DATA_DIR=$1 LATCHKEY_LISTEN=127.0.0.1:$port LATCHKEY_LOG=warn \
    LATCHKEY_DEV_TENANT_ID=bench LATCHKEY_DEV_SECRET_KEY=$key "$bin/latchkey-local" > "$1/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/health" && return; sleep 0.1; done
  echo "latchkey-local did not start"; cat "$1/server.log"; exit 1
}
load() { # key concurrency requests
  "$bin/latchkey-load" --base-url "http://127.0.0.1:$port/v1" --secret-key "$1" --concurrency "$2" \
    --requests "$3" --warmup 20 --scenarios track 2>/dev/null | grep '^{'
}
for round in $(seq 1 "$rounds"); do
  d=$(mktemp -d); serve "$d"
  load "$key" "$tenants" $((tenants * each)) > "$out/one-$round.json"
  kill "$pid"; wait "$pid" 2>/dev/null || true

  d=$(mktemp -d)
  for t in $(seq 1 "$tenants"); do
    LATCHKEY_DATA_DIR=$d LATCHKEY_LOG=warn "$bin/latchkey-admin" tenant create --id "tenant-$t" --name "Tenant $t" \
      --rp-id localhost --origin "http://localhost:$port" > /dev/null
    LATCHKEY_DATA_DIR=$d LATCHKEY_LOG=warn "$bin/latchkey-admin" key create --tenant "tenant-$t" |
      sed -n 's/^secret key: *\([^ ]*\).*/\1/p' > "$d/key-$t"
  done
  serve "$d"
  for t in $(seq 1 "$tenants"); do load "$(cat "$d/key-$t")" 1 "$each" > "$out/many-$round-$t.json" & done
  wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
python3 - "$out" "$rounds" "$tenants" <<'PY'
import json, sys, glob, statistics
out, rounds, tenants = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def rows(path):
    return [json.loads(l) for l in open(path) if l.strip()]
print(f"{'round':>5} {'layout':<22} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
for r in range(1, rounds + 1):
    one = rows(f"{out}/one-{r}.json")[0]
    many = [rows(p)[0] for p in sorted(glob.glob(f"{out}/many-{r}-*.json"))]
    p99s = [m["p99_ms"] for m in many]
    rate = sum(m["rps"] for m in many)
    print(f"{r:>5} {'1 tenant, 16 clients':<22} {one['rps']:>8.0f} {one['p50_ms']:>8.1f} {one['p99_ms']:>8.1f} {one['errors']:>7}")
    print(f"{r:>5} {f'{tenants} tenants, 1 client each':<22} {rate:>8.0f} {statistics.median(m['p50_ms'] for m in many):>8.1f} {statistics.median(p99s):>8.1f} {sum(m['errors'] for m in many):>7}   (max p99 {max(p99s):.1f})")
    print(f"{r:>5} p99 ratio, one tenant / many (median): {one['p99_ms'] / statistics.median(p99s):.2f}")
PY

#!/usr/bin/env bash
# Passkey sign-in, side by side: latchkey-local and the SimpleWebAuthn peer
# (infra/bench/simplewebauthn-peer), each driven by the same unchanged latchkey-load
# (`--scenarios passkey`: usernameless options -> software-passkey assertion -> verify), in
# interleaved rounds (latchkey, peer, latchkey, peer, ...), each run on a fresh server with a
# fresh data folder. Prints per run sign-ins/s, p50, p99, server CPU per sign-in (user + system
# from /proc/<pid>/stat, as latchkey-load reports it) and peak RSS (VmHWM), then the per-round
# ratio latchkey/peer of CPU per sign-in and its range.
#
# Usage (from anywhere):  bash infra/bench/passkey-vs-peer.sh
#   CLIENTS=16 REQUESTS=3000 WARMUP=200 ROUNDS=3      the load (defaults shown)
#   LATCHKEY_BIN_DIR=target/release                   where latchkey-local and latchkey-load are
#   LATCHKEY_PORT=8790 PEER_PORT=8791                 the two servers' loopback ports
#   KEEP=1                                            keep the run folder (logs, reports, DBs)
# Exit status: 0 when every run completed with no failed sign-in, 1 otherwise, 2 on bad set-up.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

clients=${CLIENTS:-16}
requests=${REQUESTS:-3000}
warmup=${WARMUP:-200}
rounds=${ROUNDS:-3}
bin_dir=${LATCHKEY_BIN_DIR:-target/release}
lk_port=${LATCHKEY_PORT:-8790}
peer_port=${PEER_PORT:-8791}
keep=${KEEP:-0}
peer_dir=infra/bench/simplewebauthn-peer
tenant_id=bench
secret_key=lk_0123456789abcdef_bench-secret-key-000000000

# latchkey-local refuses LATCHKEY_* variables it does not know (LATCHKEY_BIN_DIR, LATCHKEY_PORT
# above) and would take any other one from this shell.
# Likewise the peer reads PEER_* (PEER_PORT above is this script's): both servers get only the
# variables set in `run`.
while read -r name; do unset "$name"; done < <(compgen -e | grep -E '^(LATCHKEY|PEER)_' || true)

for n in clients requests warmup rounds lk_port peer_port; do
    min=1
    [[ $n == warmup ]] && min=0
    if ! [[ ${!n} =~ ^[0-9]{1,7}$ ]] || ((10#${!n} < min)); then
        echo "passkey-vs-peer: $n must be an integer >= $min, got '${!n}'" >&2
        exit 2
    fi
done
for tool in node npm python3 curl; do
    command -v "$tool" >/dev/null || { echo "passkey-vs-peer: $tool is needed" >&2; exit 2; }
done

if [[ ! -x $bin_dir/latchkey-local || ! -x $bin_dir/latchkey-load ]]; then
    if [[ $bin_dir != target/release ]]; then
        echo "passkey-vs-peer: no latchkey-local / latchkey-load in $bin_dir" >&2
        exit 2
    fi
    echo "passkey-vs-peer: building latchkey-local and latchkey-load (release)..." >&2
    cargo build --release --locked -p latchkey-local -p latchkey-load
fi
if [[ ! -d $peer_dir/node_modules ]]; then
    echo "passkey-vs-peer: installing the peer's dependencies (npm ci)..." >&2
    npm ci --prefix "$peer_dir" --no-audit --no-fund --loglevel=error
fi

for port in "$lk_port" "$peer_port"; do
    if curl -s -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; then
        echo "passkey-vs-peer: something already answers on 127.0.0.1:$port; stop it first" >&2
        exit 2
    fi
done

run_dir=$(mktemp -d)
results=$run_dir/results.tsv
: >"$results"
server_pid=
failed=0

stop_server() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    [[ -n $server_pid ]] && wait "$server_pid" 2>/dev/null || true
    server_pid=
}
cleanup() {
    stop_server
    if [[ $keep == 1 || $failed != 0 ]]; then
        echo "passkey-vs-peer: run folder kept: $run_dir" >&2
    else
        rm -rf "$run_dir"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU time in clock ticks: the whole machine's (busy and steal, /proc/stat), and one process's
# user + system (/proc/<pid>/stat, counted after the command name).
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
process_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; } # gone: the run has failed
    sed 's/.*) //' <<<"$stat" | awk '{ print $12 + $13 }'
}
# This shell's reaped children's user + system time in ms, from `times` written to file $1 (a
# command substitution would run `times` in a subshell, which has no children yet).
children_ms() { awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%d\n", t * 1000 }' "$1"; }
tick_ms=$((1000 / $(getconf CLK_TCK)))
ncpu=$(nproc)

# One measured run: start the server, wait for /health, drive it, read VmHWM, stop it.
#   run SERVER ROUND   (SERVER is latchkey or peer)
run() {
    local server=$1 round=$2 port comm dir
    dir=$run_dir/$server-$round
    mkdir -p "$dir"
    mkdir -m 700 "$dir/data"
    if [[ $server == latchkey ]]; then
        port=$lk_port comm=latchkey-local
        # env execs the binary: $! is the server's pid.
        env LATCHKEY_DATA_DIR="$dir/data" LATCHKEY_LISTEN="127.0.0.1:$port" LATCHKEY_LOG=warn \
            LATCHKEY_DEV_TENANT_ID="$tenant_id" LATCHKEY_DEV_SECRET_KEY="$secret_key" \
            LATCHKEY_ANON_PER_CLIENT_PER_MINUTE=1000000 LATCHKEY_ANON_PER_TENANT_PER_MINUTE=10000000 \
            "$bin_dir/latchkey-local" >"$dir/server.log" 2>&1 &
    else
        port=$peer_port comm=node
        env PEER_DATA_DIR="$dir/data" PEER_LISTEN="127.0.0.1:$port" PEER_TENANT_ID="$tenant_id" \
            PEER_SECRET_KEY="$secret_key" node "$peer_dir/server.js" >"$dir/server.log" 2>&1 &
    fi
    server_pid=$!
    local deadline=$((SECONDS + 60))
    until curl -fs -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; do
        if ! kill -0 "$server_pid" 2>/dev/null || ((SECONDS >= deadline)); then
            echo "passkey-vs-peer: $server (round $round) did not become ready; its output:" >&2
            cat "$dir/server.log" >&2
            stop_server
            printf '%s\t%s\tERR\n' "$server" "$round" >>"$results"
            failed=1
            return
        fi
        sleep 0.2
    done
    # The pid latchkey-load samples must be the server itself, not a wrapper (a shim `node`).
    if [[ $(cat "/proc/$server_pid/comm") != "$comm" ]]; then
        echo "passkey-vs-peer: pid $server_pid is $(cat "/proc/$server_pid/comm"), not $comm" >&2
        stop_server
        exit 2
    fi
    echo "== round $round: $server (pid $server_pid, 127.0.0.1:$port)"
    # Around the whole latchkey-load run: what the machine spent besides the server and the
    # load generator (other processes, kernel threads, steal), as a share of all its CPUs.
    local rc=0 machine0 server0 started
    machine0=$(machine_ticks)
    server0=$(process_ticks "$server_pid")
    times >"$dir/times0"
    started=$(date +%s%N)
    "$bin_dir/latchkey-load" --base-url "http://127.0.0.1:$port/v1" --secret-key "$secret_key" \
        --tenant-id "$tenant_id" --scenarios passkey --concurrency "$clients" \
        --requests "$requests" --warmup "$warmup" --server-pid "$server_pid" \
        >"$dir/load.out" 2>"$dir/load.err" || rc=$?
    local elapsed_ms machine_ms server_ms client_ms other_pct hwm
    elapsed_ms=$((($(date +%s%N) - started) / 1000000))
    machine_ms=$((($(machine_ticks) - machine0) * tick_ms))
    server_ms=$((($(process_ticks "$server_pid") - server0) * tick_ms))
    times >"$dir/times1"
    client_ms=$(($(children_ms "$dir/times1") - $(children_ms "$dir/times0")))
    other_pct=$(awk -v o=$((machine_ms - server_ms - client_ms)) -v w="$elapsed_ms" -v n="$ncpu" \
        'BEGIN { p = w > 0 ? 100 * o / (w * n) : 0; printf "%.1f", p < 0 ? 0 : p }')
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status" 2>/dev/null || true)
    stop_server
    sed '/^$/d; s/^/   /' "$dir/load.out"
    echo "   CPU over the run: server $server_ms ms, latchkey-load $client_ms ms, everything else ${other_pct}% of the machine"
    if ((rc != 0)); then
        echo "passkey-vs-peer: latchkey-load exited $rc against $server (round $round):" >&2
        sed 's/^/   /' "$dir/load.err" >&2
        echo "   server log tail:" >&2
        tail -n 20 "$dir/server.log" | sed 's/^/   /' >&2
        failed=1
    fi
    # One results row: server, round, latchkey-load's exit status, what its report says,
    # VmHWM (kB) and the other load; or ERR.
    python3 - "$server" "$round" "$rc" "${hwm:-}" "$other_pct" "$dir/load.out" >>"$results" <<'EOF'
import json, re, sys
server, rnd, rc, hwm, other, path = sys.argv[1:]
text = open(path, encoding="utf-8").read()
line = next((l for l in text.splitlines() if l.startswith('{"scenario":"passkey"')), None)
cpu = re.search(r"server CPU \(user \+ system, /proc\) per sign-in: ([0-9.]+) ms", text)
if line is None or cpu is None or not hwm:
    print(f"{server}\t{rnd}\tERR")
else:
    r = json.loads(line)
    print("\t".join(str(x) for x in (server, rnd, rc, r["requests"], r["errors"], r["rps"],
                                     r["p50_ms"], r["p99_ms"], cpu.group(1), hwm, other)))
EOF
}

echo "passkey-vs-peer: $rounds rounds, $clients clients, $requests sign-ins + $warmup warm-up per run"
echo "  latchkey-local: $bin_dir/latchkey-local; peer: node $(node --version) $peer_dir/server.js"
for round in $(seq "$rounds"); do
    run latchkey "$round"
    run peer "$round"
done

python3 - "$results" <<'EOF' || failed=1
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
ok = True
OTHER_WARN = 5.0  # percent of the machine used by neither server nor client
busy = []
print()
print(f"{'server':<9} {'round':>5} {'sign-ins/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU/sign-in ms':>14} {'peak RSS MiB':>12} {'errors':>7} {'other load':>10}")
cpu = {}
for r in rows:
    if len(r) < 11:
        print(f"{r[0]:<9} {r[1]:>5} {'(run failed)':>10}")
        ok = False
        continue
    server, rnd, rc, requests, errors, rps, p50, p99, per, hwm, other = r
    if float(other) > OTHER_WARN:
        busy.append(f"{server} round {rnd}")
    if rc != "0" or int(errors) > 0:
        ok = False
    cpu[(server, rnd)] = float(per)
    print(f"{server:<9} {rnd:>5} {float(rps):>10.1f} {float(p50):>8.2f} {float(p99):>8.2f} "
          f"{float(per):>14.3f} {int(hwm) / 1024:>12.1f} {errors:>7} {float(other):>9.1f}%")
print()
ratios = []
for rnd in sorted({k[1] for k in cpu}, key=int):
    lk, peer = cpu.get(("latchkey", rnd)), cpu.get(("peer", rnd))
    if lk is None or peer is None or peer == 0:
        print(f"round {rnd}: CPU per sign-in latchkey/peer: n/a")
        continue
    ratios.append(lk / peer)
    print(f"round {rnd}: CPU per sign-in latchkey/peer = {lk:.3f} / {peer:.3f} = {lk / peer:.2f}")
if ratios:
    print(f"ratio range: {min(ratios):.2f}-{max(ratios):.2f} over {len(ratios)} round(s)")
if busy:
    print(f"warning: something else used more than {OTHER_WARN:.0f}% of the machine during "
          f"{', '.join(busy)}: those figures are suspect")
if not ok:
    print("passkey-vs-peer: FAILED: a run did not complete, or a sign-in failed", file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
exit "$failed"

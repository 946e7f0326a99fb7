# Sourced by the test harnesses (tests/sdk/python/run.sh, tests/e2e/run.sh): starts a fresh
# latchkey-local on a loopback port with a private data folder, waits until it answers
# /health, and stops it (and removes the folder) when the sourcing script exits.
#
#   start_local_server PORT [NAME=VALUE ...]   # extra environment for the server
#   local_server_log_tail                      # the last lines of its output, to stderr
#
# Run from the repository root. Sets: work (the temporary folder), server_pid.

work=
server_pid=

_local_server_cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    [[ -n "$work" ]] && rm -rf "$work"
}

start_local_server() {
    local port=$1
    shift
    if curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
        echo "local_server: something already answers on 127.0.0.1:$port; stop it first" >&2
        exit 1
    fi
    work=$(mktemp -d)
    trap _local_server_cleanup EXIT
    mkdir -m 700 "$work/data"
    # `cargo run` replaces itself with the server binary (exec), so this pid is the server's.
    env LATCHKEY_DATA_DIR="$work/data" LATCHKEY_LISTEN="127.0.0.1:$port" "$@" \
        cargo run -q -p latchkey-local --locked >"$work/server.log" 2>&1 &
    server_pid=$!
    echo "local_server: waiting for latchkey-local on 127.0.0.1:$port (builds first if needed)..."
    local deadline=$((SECONDS + 900))
    until curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "local_server: latchkey-local exited before it became healthy; its output:" >&2
            cat "$work/server.log" >&2
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            echo "local_server: latchkey-local not healthy after 15 minutes; its output:" >&2
            cat "$work/server.log" >&2
            exit 1
        fi
        sleep 1
    done
}

local_server_log_tail() {
    echo "local_server: server log tail:" >&2
    tail -n 40 "$work/server.log" >&2 || true
}

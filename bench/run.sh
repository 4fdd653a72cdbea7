#!/usr/bin/env bash
# Every figure of BENCHMARKS.md in one command: installs what it needs under .tools/ (moto,
# DynamoDB Local, the Python baseline's Powertools), builds the release binaries, and runs
#   1. criterion: the pipeline's CPU per event with in-memory backends
#   2. bench/e2e.py, local mode: the receive binary alone, no AWS
#   3. bench/e2e.py, AWS mode against DynamoDB Local and moto: the receive binary and the
#      Python + Powertools baseline side by side, in one run, then beside its floors
#   4. bench/forward.py: the forward function's CPU per event at batch sizes 1 and 10
#   5. benches/accept_to_bus.rs: accept-to-bus latency through the table's stream
#   (4 and 5 each on freshly started emulators: DynamoDB Local slows as tables with streams
#   pile up)
#   and, first, bench/size.sh: the release build and the bootstrap and zip size of every function
# then stops the servers it started. Arguments: RUNS (default 10) WARM (default 100).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$root"
trap stop_servers EXIT
runs=${1:-10}
warm=${2:-100}

ensure_moto
ensure_dynamodb_local
if [ ! -x "$tools/bench-venv/bin/python" ]; then
  log "installing the Python baseline (Powertools, boto3, awslambdaric) into .tools/bench-venv"
  python3 -m venv "$tools/bench-venv"
  "$tools/bench-venv/bin/pip" install --quiet --disable-pip-version-check -r bench/powertools/requirements.txt
fi

log "criterion"
cargo bench --quiet -p sendblue-webhooks --bench pipeline -- --warm-up-time 1 --measurement-time 3 \
  --output-format bencher 2>/dev/null | grep '^test '


# Each function on its own (`-p`), as cargo lambda and SAM build them: the workspace's CLI would
# otherwise add its own features to the shared dependencies.
log "release build and package size of every function"
for function in $(ls "$root/functions"); do
  FUNCTION=$function bench/size.sh baseline
done
start_emulators "$ddb_jar"

log "end to end, local mode"
"$tools/venv/bin/python" bench/e2e.py --event events/receive.json --runs "$runs" --warm "$warm" \
  --function receive=target/release/receive
log "end to end, AWS mode: Rust and Python + Powertools side by side"
"$tools/venv/bin/python" bench/e2e.py --event events/receive.json --runs "$runs" --warm "$warm" \
  --dynamodb "$dynamodb_url" --moto "$moto_url" \
  --function receive=target/release/receive \
  --function "python-powertools=env PYTHONPATH=bench/powertools $tools/bench-venv/bin/python -m awslambdaric app.handler"
log "end to end, AWS mode: the receiver beside its floors (SDK calls only, runtime only)"
cargo build --release --quiet -p receive -p bench-floors
"$tools/venv/bin/python" bench/e2e.py --event events/receive.json --runs "$runs" --warm "$warm" \
  --dynamodb "$dynamodb_url" --moto "$moto_url" \
  --function receive=target/release/receive \
  --function sdk-floor=target/release/floor-sdk --function bare-floor=target/release/floor-bare
log "forward: CPU per event at batch sizes 1 and 10 (fresh emulators)"
stop_servers
start_emulators "$ddb_jar"
cargo build --release --quiet -p forward
"$tools/venv/bin/python" bench/forward.py --dynamodb "$dynamodb_url" --moto "$moto_url" --runs 5 --events 200
log "accept-to-bus latency through the stream (fresh emulators)"
stop_servers
start_emulators "$ddb_jar"
SENDBLUE_TEST_DYNAMODB_ENDPOINT=$dynamodb_url SENDBLUE_TEST_MOTO_ENDPOINT=$moto_url \
  cargo bench --quiet -p sendblue-webhooks --bench accept_to_bus -- 500 50 2>&1 | grep '^accept-to-bus'

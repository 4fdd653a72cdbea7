#!/usr/bin/env bash
# The one test command (README, .ci/run). On a fresh machine it installs what the tests need
# (moto, DynamoDB Local, cargo-lambda, under .tools/), starts DynamoDB Local and moto on free
# loopback ports, checks formatting and lints, runs every test, smoke-tests the local run, and
# stops everything it started however it ends. Arguments go to `cargo test`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"
trap stop_servers EXIT

ensure_moto
ensure_cargo_lambda
ddb_jar=$(ensure_dynamodb_local)

ddb_port=$(free_port)
start_server dynamodb-local "$ddb_port" java -Djava.library.path="$(dirname "$ddb_jar")/DynamoDBLocal_lib" \
  -jar "$ddb_jar" -inMemory -port "$ddb_port"
moto_port=$(free_port)
start_server moto "$moto_port" moto_server -H 127.0.0.1 -p "$moto_port"
log "DynamoDB Local on port $ddb_port, moto on port $moto_port"
export SENDBLUE_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$ddb_port"
export SENDBLUE_TEST_MOTO_ENDPOINT="http://127.0.0.1:$moto_port"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
log "cargo test"
cargo test --workspace --tests "$@" 2>&1 | tee "$tools/cargo-test.log"

log "smoke test: the local run forwards every sample event"
cargo build --workspace --bins --quiet # what cargo lambda watch runs, built before the first request
local_port=$(free_port)
PORT=$local_port start_server local-run "$local_port" scripts/local.sh --quiet
scripts/send-samples.sh "http://127.0.0.1:$local_port/lambda-url"
python3 - "$tools/local-run.log" <<'PY'
import json, sys
types = sorted(json.loads(l)["DetailType"] for l in open(sys.argv[1]) if l.startswith('{"Source"'))
expected = sorted(["receive", "outbound", "typing_indicator", "call_log", "line_blocked", "line_assigned", "contact_created"])
assert types == expected, f"forwarded {types}, expected {expected}"
PY

# One closing line for the whole run: cargo's per-binary results added up, plus the smoke test.
python3 - "$tools/cargo-test.log" <<'PY'
import re, sys
counts = [tuple(map(int, m)) for m in re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed", open(sys.argv[1]).read())]
print(f"total: {sum(p for p, _ in counts) + 1} passed, {sum(f for _, f in counts)} failed")
PY

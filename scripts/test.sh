#!/usr/bin/env bash
# The one test command (README, .ci/run). On a fresh machine it installs what the tests need
# (moto, DynamoDB Local, cargo-lambda, SAM CLI, cfn-lint and the AWS CLI, under .tools/), lints the template
# and checks its contract, starts DynamoDB Local and moto on free loopback ports, checks
# formatting and lints, checks that every reference in the docs and code resolves, runs every
# test (the emulator tests included), smoke-tests the local run, checks every forwarded event
# against schemas/, builds every function with `sam build` for x86_64, deploys them twice with
# scripts/deploy-cargo-lambda.sh against moto and destroys them, and stops everything it started
# however it ends. Arguments go to `cargo test`.
#
# A failing test group does not stop the run: every group runs, each one's counts are read from
# its own runner's output (scripts/test_summary.py), and the closing line adds them up. A step
# that is not a test (an install, fmt, clippy, the template lint) stops the run at once, with
# its own message. Where the time goes is printed at the end (and kept in .tools/timings.log).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"
trap stop_servers EXIT
# One build from scratch: incremental state would only add to target/ (1.3 GB on a fresh run).
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

results="$tools/results"
rm -rf "$results" && mkdir -p "$results"
: >"$tools/timings.log"

# timed NAME COMMAND...: runs a step that must succeed, and records how long it took.
timed() {
  local name=$1 started=$SECONDS
  shift
  log "$name"
  "$@"
  printf '%5ds  %s\n' $((SECONDS - started)) "$name" >>"$tools/timings.log"
}

# group NAME COMMAND...: runs a test group (in a subshell: a server it starts, it stops), its
# output shown and kept in $results/NAME.log; a failure is counted by the summary, not fatal.
group() {
  local name=$1 started=$SECONDS
  shift
  log "$name"
  "$@" 2>&1 | tee "$results/$name.log" || log "$name: FAILED (counted in the summary)"
  printf '%5ds  %s\n' $((SECONDS - started)) "$name" >>"$tools/timings.log"
}

install_tools() {
  ensure_moto
  ensure_cargo_lambda
  ensure_sam
  ensure_aws_cli
  ensure_dynamodb_local
}

# The template is linted once per frontend (cfn-lint also checks every condition's scenarios).
lint_template() {
  local frontend secrets=lint-secret tokens=lint-token-0123456789abcdef0123456789
  for frontend in HttpApi FunctionUrl; do
    "$tools/sam-venv/bin/cfn-lint" template.yaml --parameters "Frontend=$frontend" \
      "SendblueWebhookSecrets=$secrets" "StatusCallbackTokens=$tokens"
  done
  "$tools/sam-venv/bin/sam" validate --lint --region us-east-1
}

cargo_tests() {
  # The emulator tests are ignored by a plain `cargo test`; the emulators run here, so all.
  cargo test --workspace --tests --no-fail-fast "$@" -- --include-ignored
}

# The local run (cargo lambda watch) answers every sample event, and forwards each once.
smoke_test() {
  cargo build --workspace --bins --quiet # what cargo lambda watch runs, built before the first request
  local port
  port=$(free_port)
  PORT=$port start_server local-run "$port" scripts/local.sh --quiet
  local local_run=${server_pids[-1]}
  local sent=ok
  scripts/send-samples.sh "http://127.0.0.1:$port/sendblue" || sent=FAILED
  echo "check: every sample delivered $sent"
  python3 - "$tools/local-run.log" functions/* <<'PY'
import json, os, sys
forwarded = sorted(json.loads(l)["DetailType"] for l in open(sys.argv[1]) if l.startswith('{"Source"'))
for function in sorted(sys.argv[2:]):
    if not os.path.exists(f"events/{os.path.basename(function)}.json"):
        continue  # reconcile: no webhook calls it
    detail_type = os.path.basename(function).replace("-", "_")
    verdict = "ok" if forwarded.count(detail_type) == 1 else "FAILED"
    print(f"check: {detail_type} forwarded once by the local run {verdict}")
PY
  kill -- "-$local_run" 2>/dev/null || true
}

# `sam build` of every function through the template's own build metadata (rust-cargolambda),
# which is what proves the template builds. arm64 needs the aarch64 standard library, which
# this machine cannot install: x86_64 here.
sam_build() {
  # The template decides the architecture in one line (arm64): built here from a copy that
  # says x86_64, beside the original so that its relative CodeUri still resolves.
  local copy=template.x86_64.yaml
  sed 's/^    Architectures: \[arm64\]$/    Architectures: [x86_64]/' template.yaml >"$copy"
  grep -q '^    Architectures: \[x86_64\]$' "$copy" || { echo "check: the x86_64 copy FAILED"; return 1; }
  light_release "$tools/sam-venv/bin/sam" build \
    --build-dir "$tools/sam-build" --template-file "$copy" || { rm -f "$copy"; return 1; }
  rm -f "$copy"
  local built expected verdict=FAILED
  built=$(find "$tools/sam-build" -name bootstrap -type f -perm -u+x | wc -l)
  expected=$(find functions -mindepth 1 -maxdepth 1 -type d | wc -l)
  [ "$built" -eq "$expected" ] && verdict=ok
  echo "check: sam build made $built of $expected executable bootstraps $verdict"
}

# scripts/deploy-cargo-lambda.sh twice, then the destroy script, against a moto of its own.
deploy_test() {
  local port status=0
  port=$(free_port)
  start_server moto-deploy "$port" moto_server -H 127.0.0.1 -p "$port"
  SENDBLUE_TEST_MOTO_ENDPOINT=http://127.0.0.1:$port light_release \
    "$tools/sam-venv/bin/python" -m unittest -v tests/deploy_test.py || status=$?
  stop_servers
  return "$status"
}

# The consumers' crate packages (and so could be published) as it is: a manifest of its own,
# its README, and a build of the packaged crate alone, outside the workspace.
package_events() {
  local verdict=FAILED
  cargo package -p sendblue-events --allow-dirty --quiet && verdict=ok
  echo "check: cargo package -p sendblue-events $verdict"
}

timed "install tools (first run only)" install_tools
group references python3 scripts/check_references.py
timed "cfn-lint template.yaml (both frontends), sam validate --lint" lint_template
group template-contract "$tools/sam-venv/bin/python" -m unittest -v tests/template_contract.py
group package package_events
# The mutants of scripts/mutants.sh still apply to the code (running them is not part of CI).
group mutants-check python3 scripts/mutants.py --check

timed "start DynamoDB Local and moto" start_emulators "$ddb_jar"
export SENDBLUE_TEST_DYNAMODB_ENDPOINT=$dynamodb_url
export SENDBLUE_TEST_MOTO_ENDPOINT=$moto_url
# Every event the integration tests read back from the bus, for the schema check.
export SENDBLUE_TEST_FORWARDED_LOG=$results/forwarded-events.jsonl

timed "cargo fmt --check" cargo fmt --all -- --check
timed "cargo clippy --workspace --all-targets -- -D warnings" \
  cargo clippy --workspace --all-targets --quiet -- -D warnings
timed "cargo build of the tests" cargo test --workspace --tests --no-run --quiet
group cargo-tests cargo_tests "$@"
group smoke smoke_test
group crash-test "$tools/venv/bin/python" -m unittest -v tests/crash_test.py
group runtime-test "$tools/venv/bin/python" -m unittest -v tests/runtime_test.py
group schema-test "$tools/venv/bin/python" -m unittest -v tests/schema_test.py
stop_servers
group sam-build sam_build
group deploy-test deploy_test

log "where the time went"
cat "$tools/timings.log" >&2
log "disk used: $(du -sh target | cut -f1) in target/, $(du -sh "$tools" | cut -f1) in .tools/, $(df -h . | awk 'NR==2 {print $4}') left"
python3 scripts/test_summary.py checks:"$results/references.log" unittest:"$results/template-contract.log" \
  checks:"$results/package.log" checks:"$results/mutants-check.log" \
  cargo:"$results/cargo-tests.log" checks:"$results/smoke.log" \
  unittest:"$results/crash-test.log" unittest:"$results/runtime-test.log" \
  unittest:"$results/schema-test.log" \
  checks:"$results/sam-build.log" unittest:"$results/deploy-test.log"

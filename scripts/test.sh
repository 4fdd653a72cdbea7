#!/usr/bin/env bash
# The one test command (README, .ci/run). On a fresh machine it installs what the tests need
# (moto, DynamoDB Local, cargo-lambda, SAM CLI and cfn-lint, under .tools/), lints the template
# and checks its contract, starts DynamoDB Local and moto on free loopback ports, checks
# formatting and lints, runs every test, smoke-tests the local run, builds the stack with
# `sam build` for x86_64, and stops everything it started however it ends. Arguments go to
# `cargo test`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"
trap stop_servers EXIT

ensure_moto
ensure_cargo_lambda
ensure_sam
ddb_jar=$(ensure_dynamodb_local)

log "cfn-lint template.yaml, sam validate --lint"
"$tools/sam-venv/bin/cfn-lint" template.yaml
"$tools/sam-venv/bin/sam" validate --lint --region us-east-1
log "template contract"
"$tools/sam-venv/bin/python" -m unittest -v tests/template_contract.py 2>&1 | tee "$tools/template-test.log"

start_emulators "$ddb_jar"
export SENDBLUE_TEST_DYNAMODB_ENDPOINT=$dynamodb_url
export SENDBLUE_TEST_MOTO_ENDPOINT=$moto_url

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
log "cargo test"
# The emulator tests are ignored by a plain `cargo test`; here the emulators run, so all of them.
cargo test --workspace --tests "$@" -- --include-ignored 2>&1 | tee "$tools/cargo-test.log"

log "smoke test: the local run forwards every sample event"
cargo build --workspace --bins --quiet # what cargo lambda watch runs, built before the first request
local_port=$(free_port)
PORT=$local_port start_server local-run "$local_port" scripts/local.sh --quiet
scripts/send-samples.sh "http://127.0.0.1:$local_port/sendblue"
python3 - "$tools/local-run.log" functions/* <<'PY'
import json, os, sys
types = sorted(json.loads(l)["DetailType"] for l in open(sys.argv[1]) if l.startswith('{"Source"'))
expected = sorted(os.path.basename(f).replace("-", "_") for f in sys.argv[2:])
assert types == expected, f"forwarded {types}, expected {expected}"
PY

log "crash test: the receive binary killed after its claim"
"$tools/venv/bin/python" -m unittest -v tests/crash_test.py 2>&1 | tee "$tools/crash-test.log"
log "runtime test: the real binaries' logs at TRACE, and their refusal of bad settings"
"$tools/venv/bin/python" -m unittest -v tests/runtime_test.py 2>&1 | tee "$tools/runtime-test.log"

stop_servers

# arm64 needs the aarch64 standard library, which this machine cannot install: x86_64 here.
log "sam build (x86_64)"
"$tools/sam-venv/bin/sam" build --parameter-overrides Architecture=x86_64 \
  --build-dir "$tools/sam-build" --template-file template.yaml
ls -l "$tools"/sam-build/*/bootstrap

# One closing line for the whole run: cargo's per-binary results added up, plus the smoke test.
python3 - "$tools/cargo-test.log" "$tools/template-test.log" "$tools/crash-test.log" "$tools/runtime-test.log" <<'PY'
import re, sys
cargo, *python_runs = (open(path).read() for path in sys.argv[1:])
counts = [tuple(map(int, m)) for m in re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed", cargo)]
passed = sum(p for p, _ in counts) + 1  # + the smoke test
passed += sum(int(re.search(r"Ran (\d+) tests?", run).group(1)) for run in python_runs)
print(f"total: {passed} passed, {sum(f for _, f in counts)} failed")
PY

#!/usr/bin/env bash
# Runs all eight functions locally with no AWS account: `cargo lambda watch` serves each one at
# http://127.0.0.1:${PORT:-9000}/sendblue/<function>, the path it has once deployed (the router in
# Cargo.toml), with in-memory dedup, and prints every forwarded event as a JSON line
# (scripts/local.env). Extra arguments go to cargo lambda watch.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_cargo_lambda
cd "$root"
exec cargo lambda watch --env-file scripts/local.env --invoke-address 127.0.0.1 \
  --invoke-port "${PORT:-9000}" "$@"

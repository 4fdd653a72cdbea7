#!/usr/bin/env bash
# Breaks each promise of the door and the forwarder on purpose and checks that its tests fail
# (scripts/mutants.py holds the list and says how). Installs what it needs like the test
# command, starts DynamoDB Local and moto, runs the mutants (all, or those named) and stops the
# servers; every file is put back after each mutant. About ten minutes here; not part of CI,
# which runs only `scripts/mutants.py --check`.
#
#   scripts/mutants.sh [NAME ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"
trap stop_servers EXIT
ensure_moto
ensure_sam
ensure_dynamodb_local
start_emulators "$ddb_jar"
SENDBLUE_TEST_DYNAMODB_ENDPOINT=$dynamodb_url SENDBLUE_TEST_MOTO_ENDPOINT=$moto_url \
  python3 scripts/mutants.py "$@"

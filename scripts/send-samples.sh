#!/usr/bin/env bash
# Delivers the body of every sample event in events/ as Sendblue does, with the CLI's `send`
# (POST, JSON, the sb-signing-secret header, retries on 5xx), and prints each answer. Exits
# non-zero if any delivery is not accepted.
#   scripts/send-samples.sh [URL_PREFIX]   (default: the local run's http://127.0.0.1:9000/sendblue)
# Against a deployed stack: scripts/send-samples.sh https://<api-id>.execute-api.<region>.amazonaws.com/sendblue
# with SENDBLUE_WEBHOOK_SECRET set to one of the stack's secrets and SENDBLUE_CALLBACK_TOKEN to
# one of its status-callback tokens.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${1:-http://127.0.0.1:9000/sendblue}
export SENDBLUE_WEBHOOK_SECRET=${SENDBLUE_WEBHOOK_SECRET:-local-dev-secret}
token=${SENDBLUE_CALLBACK_TOKEN:-local-dev-callback-token-0123456789abcdef}
cd "$root"
cargo build --quiet -p sendblue-webhooks-cli
failed=0
# Every function with a sample event (all but reconcile, which no webhook calls).
for function in $(ls "$root/functions"); do
  [ -f "$root/events/$function.json" ] || continue
  url="$prefix/$function"
  [ "$function" = status-callback ] && url="$url/$token"
  printf '%s\n' "$function"
  python3 -c 'import json, sys; sys.stdout.write(json.load(open(sys.argv[1]))["body"])' "events/$function.json" |
    "${CARGO_TARGET_DIR:-target}/debug/sendblue-webhooks" send "${function//-/_}" - --url "$url" || failed=1
done
exit "$failed"

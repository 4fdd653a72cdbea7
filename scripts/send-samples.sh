#!/usr/bin/env bash
# Delivers the body of every sample event in events/ as Sendblue does (POST, JSON, the
# sb-signing-secret header) and prints each answer. Exits non-zero if any is not a 200.
#   scripts/send-samples.sh [URL_PREFIX]   (default: the local run's http://127.0.0.1:9000/sendblue)
# Against a deployed stack: scripts/send-samples.sh https://<api-id>.execute-api.<region>.amazonaws.com/sendblue
# with SECRET set to one of the stack's accepted secrets.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${1:-http://127.0.0.1:9000/sendblue}
secret=${SECRET:-local-dev-secret}
failed=0
for function in receive outbound typing-indicator call-log line-blocked line-assigned contact-created; do
  body=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["body"])' "$root/events/$function.json")
  answer=$(curl -sS --max-time 60 -o /dev/stdout -w ' %{http_code}' -X POST "$prefix/$function" \
    -H 'content-type: application/json' -H "sb-signing-secret: $secret" --data-binary "$body")
  printf '%-17s %s\n' "$function" "$answer"
  [ "${answer##* }" = 200 ] || failed=1
done
exit "$failed"

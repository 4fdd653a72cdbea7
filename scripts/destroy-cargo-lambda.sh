#!/usr/bin/env bash
# Removes what scripts/deploy-cargo-lambda.sh made for STACK_NAME: the forward function's stream
# mapping and sweep rule, the functions (with their URLs and permissions), their log groups, the
# roles, the failure queue, the archive and the bus. Events still pending in the kept table are
# forwarded by the next deploy (its mapping starts at the stream's oldest record; its sweep
# takes the rest). The dedup table is
# kept (as the template keeps it): its keys are what stops a redeployed stack from forwarding
# Sendblue's retries twice. `--delete-table` removes it too. Unregister the URLs at Sendblue
# first (`sendblue-webhooks unregister --stack-outputs FILE`), or its deliveries start failing.
#
#   STACK_NAME=sendblue-webhooks scripts/destroy-cargo-lambda.sh [--delete-table]
#
# Whatever is already gone is skipped, so it can be run again after a failure. Every AWS call
# honours AWS_ENDPOINT_URL.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[destroy] %s\n' "$*" >&2; }

delete_table=false
case ${1:-} in
  "") ;;
  --delete-table) delete_table=true ;;
  *) say "usage: $0 [--delete-table]"; exit 2 ;;
esac
: "${STACK_NAME:?set STACK_NAME, the name the stack was deployed with}"
export AWS_PAGER=""

# gone WHAT COMMAND...: runs a delete, saying what went; "not found" is not an error.
gone() {
  local what=$1 output
  shift
  if output=$("$@" 2>&1); then
    say "deleted $what"
  elif grep -q -E 'NotFound|NoSuchEntity|does not exist' <<<"$output"; then
    say "$what: already gone"
  else
    say "$what: $output"
    return 1
  fi
}

for uuid in $(aws lambda list-event-source-mappings --function-name "$STACK_NAME-forward" \
  --query 'EventSourceMappings[].UUID' --output text 2>/dev/null || true); do
  gone "stream mapping $uuid" aws lambda delete-event-source-mapping --uuid "$uuid"
done
gone "targets of rule $STACK_NAME-forward-sweep" aws events remove-targets --rule "$STACK_NAME-forward-sweep" --ids forward
gone "rule $STACK_NAME-forward-sweep" aws events delete-rule --name "$STACK_NAME-forward-sweep"
for dir in functions/*/; do
  binary=$(basename "$dir")
  [ -e "events/$binary.json" ] || [ "$binary" = forward ] || continue # reconcile: not deployed by this route
  gone "function $STACK_NAME-$binary" aws lambda delete-function --function-name "$STACK_NAME-$binary"
  gone "log group /aws/lambda/$STACK_NAME-$binary" aws logs delete-log-group --log-group-name "/aws/lambda/$STACK_NAME-$binary"
done
gone "policy of role $STACK_NAME-receiver" aws iam delete-role-policy --role-name "$STACK_NAME-receiver" --policy-name receiver
gone "role $STACK_NAME-receiver" aws iam delete-role --role-name "$STACK_NAME-receiver"
gone "policy of role $STACK_NAME-forward" aws iam delete-role-policy --role-name "$STACK_NAME-forward" --policy-name forward
gone "role $STACK_NAME-forward" aws iam delete-role --role-name "$STACK_NAME-forward"
# The AWS CLI v1 sends SQS calls to its legacy endpoint whatever AWS_ENDPOINT_URL says.
sqs=(aws sqs ${AWS_ENDPOINT_URL:+--endpoint-url "$AWS_ENDPOINT_URL"})
if queue_url=$("${sqs[@]}" get-queue-url --queue-name "$STACK_NAME-forward-failures" --query QueueUrl --output text 2>/dev/null); then
  gone "queue $STACK_NAME-forward-failures" "${sqs[@]}" delete-queue --queue-url "$queue_url"
else
  say "queue $STACK_NAME-forward-failures: already gone"
fi
gone "archive $STACK_NAME-sendblue-archive" aws events delete-archive --archive-name "$STACK_NAME-sendblue-archive"
# A bus that still has your rules on it is refused by EventBridge: remove them first.
gone "event bus $STACK_NAME-sendblue" aws events delete-event-bus --name "$STACK_NAME-sendblue"
if $delete_table; then
  aws dynamodb update-table --table-name "$STACK_NAME-dedup" --no-deletion-protection-enabled >/dev/null 2>&1 || true
  gone "table $STACK_NAME-dedup" aws dynamodb delete-table --table-name "$STACK_NAME-dedup"
else
  say "kept table $STACK_NAME-dedup (--delete-table removes it)"
fi

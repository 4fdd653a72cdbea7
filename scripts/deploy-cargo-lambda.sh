#!/usr/bin/env bash
# Deploys the receivers without SAM: the dedup table (with its stream and pending index), the bus
# and its archive, the IAM roles with the template's least-privilege policies, the eight receiver
# functions (built and deployed by cargo-lambda), each behind a public Function URL and holding
# only the proof it checks, and the forward function that puts what they accept on the bus: its
# stream mapping (with the template's settings and failure queue) and its 5-minute sweep. Prints
# the URLs as a JSON list of stack outputs, the format `sendblue-webhooks register
# --stack-outputs` reads. What exists is found and kept; a second run changes only what changed.
#
#   STACK_NAME=sendblue-webhooks SENDBLUE_WEBHOOK_SECRETS=... SENDBLUE_CALLBACK_TOKENS=... \
#     scripts/deploy-cargo-lambda.sh arm64 > outputs.json
#
# Needs the AWS CLI, cargo-lambda and python3. Every AWS call (the AWS CLI's and cargo-lambda's)
# honours AWS_ENDPOINT_URL, which is how the test command runs this script against moto.
# Optional settings, with the template's defaults: SENDBLUE_CONTACT_CREATED_SECRETS (the secrets
# of the contact_created receiver alone; default SENDBLUE_WEBHOOK_SECRETS), EVENT_SOURCE (sendblue), DEDUP_TTL_SECONDS
# (86400), MAX_BODY_BYTES (245760), FUNCTION_MEMORY_MB (128), FUNCTION_TIMEOUT_SECONDS (10),
# LOG_RETENTION_DAYS (30), ARCHIVE_RETENTION_DAYS (30), SWEEP_MIN_AGE_SECONDS (300),
# SENDBLUE_NUMBERS (this stack's lines, E.164, comma-separated: printed as the SendblueNumbers
# output, which `register` limits the receive webhook to; empty: every line). Not deployed
# by this route: the reconcile function, the alarms and the dashboard (the SAM route has them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[deploy] %s\n' "$*" >&2; }
fail() { say "$*"; exit 2; }

case ${1:-} in
  arm64) build_flag=--arm64 ;;
  x86_64) build_flag=--x86-64 ;;
  *) fail "usage: $0 arm64|x86_64 (the Lambda architecture to build for and deploy)" ;;
esac
: "${STACK_NAME:?set STACK_NAME, the prefix of every resource name}"
: "${SENDBLUE_WEBHOOK_SECRETS:?set SENDBLUE_WEBHOOK_SECRETS (comma-separated sb-signing-secret values)}"
: "${SENDBLUE_CALLBACK_TOKENS:?set SENDBLUE_CALLBACK_TOKENS (comma-separated status-callback tokens)}"
[[ $STACK_NAME =~ ^[A-Za-z][A-Za-z0-9-]{0,39}$ ]] ||
  fail "STACK_NAME must be letters, digits and dashes, at most 40 (it prefixes function names)"
[[ $SENDBLUE_CALLBACK_TOKENS =~ ^[A-Za-z0-9_-]{32,}(,[A-Za-z0-9_-]{32,})*$ ]] ||
  fail "SENDBLUE_CALLBACK_TOKENS: comma-separated tokens of at least 32 URL-safe characters"
contact_created_secrets=${SENDBLUE_CONTACT_CREATED_SECRETS:-$SENDBLUE_WEBHOOK_SECRETS}
[ "${#SENDBLUE_WEBHOOK_SECRETS}" -ge 8 ] || fail "SENDBLUE_WEBHOOK_SECRETS: at least 8 characters"
[ "${#contact_created_secrets}" -ge 8 ] || fail "SENDBLUE_CONTACT_CREATED_SECRETS: at least 8 characters"
case "$SENDBLUE_WEBHOOK_SECRETS$contact_created_secrets$SENDBLUE_CALLBACK_TOKENS" in
  *$'\n'* | *'"'* | *"'"* | *' '* | *'#'*) fail "secrets and tokens may not hold newlines, quotes, spaces or #" ;;
esac

sendblue_numbers=${SENDBLUE_NUMBERS:-}
[[ -z $sendblue_numbers || $sendblue_numbers =~ ^\+[1-9][0-9]{6,14}(,\+[1-9][0-9]{6,14})*$ ]] ||
  fail "SENDBLUE_NUMBERS: comma-separated line numbers in E.164 (like +15551234567), no spaces"
event_source=${EVENT_SOURCE:-sendblue}
dedup_ttl_seconds=${DEDUP_TTL_SECONDS:-86400}
max_body_bytes=${MAX_BODY_BYTES:-245760}
memory_mb=${FUNCTION_MEMORY_MB:-128}
timeout_seconds=${FUNCTION_TIMEOUT_SECONDS:-10}
log_retention_days=${LOG_RETENTION_DAYS:-30}
archive_retention_days=${ARCHIVE_RETENTION_DAYS:-30}
sweep_min_age_seconds=${SWEEP_MIN_AGE_SECONDS:-300}
# The stream forwards events pending for less than half of it: half must outlast forward's 60 s.
[[ $sweep_min_age_seconds =~ ^[0-9]+$ ]] && [ "$sweep_min_age_seconds" -ge 120 ] && [ "$sweep_min_age_seconds" -le 86400 ] ||
  fail "SWEEP_MIN_AGE_SECONDS: seconds, 120 to 86400 (the template's range)"

region=${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region 2>/dev/null || true)}}
[ -n "$region" ] || fail "no AWS region: set AWS_REGION"
export AWS_REGION=$region AWS_DEFAULT_REGION=$region AWS_PAGER=""
identity=$(aws sts get-caller-identity --query '[Account,Arn]' --output text)
read -r account caller_arn <<<"$identity"
partition=$(cut -d: -f2 <<<"$caller_arn")

# The secrets go to cargo-lambda in a file only we can read, never on a command line.
env_file=$(umask 077 && mktemp)
trap 'rm -f "$env_file"' EXIT

# Names: the template's, with the stack name as prefix.
table=$STACK_NAME-dedup
bus=$STACK_NAME-sendblue
archive=$STACK_NAME-sendblue-archive
role=$STACK_NAME-receiver
forward_role=$STACK_NAME-forward
failure_queue=$STACK_NAME-forward-failures
sweep_rule=$STACK_NAME-forward-sweep
receivers=()
for dir in functions/*/; do
  binary=$(basename "$dir")
  [ -e "events/$binary.json" ] && receivers+=("$binary") # reconcile and forward have no webhook
done

# same_json A B: whether two JSON texts hold the same value.
same_json() { python3 -c 'import json,sys; sys.exit(json.loads(sys.argv[1]) != json.loads(sys.argv[2]))' "$1" "$2"; }

ensure_table() {
  if ! table_arn=$(aws dynamodb describe-table --table-name "$table" --query Table.TableArn --output text 2>/dev/null); then
    say "creating table $table"
    # The template's DedupTable: pk, the sparse index `pending`, a stream of new images.
    table_arn=$(aws dynamodb create-table --table-name "$table" --billing-mode PAY_PER_REQUEST \
      --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=pending_type,AttributeType=S \
      AttributeName=received_at_ms,AttributeType=N --key-schema AttributeName=pk,KeyType=HASH \
      --global-secondary-indexes "$pending_index" \
      --stream-specification StreamEnabled=true,StreamViewType=NEW_IMAGE \
      --sse-specification Enabled=true --deletion-protection-enabled \
      --query TableDescription.TableArn --output text)
    aws dynamodb wait table-exists --table-name "$table"
  fi
  # A table made by an earlier version of this script has neither: add them.
  if [ "$(aws dynamodb describe-table --table-name "$table" --query 'Table.StreamSpecification.StreamViewType' --output text)" != NEW_IMAGE ]; then
    say "turning on the stream (NEW_IMAGE) of $table"
    aws dynamodb update-table --table-name "$table" \
      --stream-specification StreamEnabled=true,StreamViewType=NEW_IMAGE >/dev/null
  fi
  if [ "$(aws dynamodb describe-table --table-name "$table" --query "Table.GlobalSecondaryIndexes[?IndexName=='pending'] | length(@)" --output text)" != 1 ]; then
    say "adding the pending index to $table"
    aws dynamodb update-table --table-name "$table" \
      --attribute-definitions AttributeName=pending_type,AttributeType=S AttributeName=received_at_ms,AttributeType=N \
      --global-secondary-index-updates "[{\"Create\": $(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])[0]))' "$pending_index")}]" >/dev/null
  fi
  stream_arn=$(aws dynamodb describe-table --table-name "$table" --query Table.LatestStreamArn --output text)
  if [ "$(aws dynamodb describe-time-to-live --table-name "$table" \
    --query 'TimeToLiveDescription.[TimeToLiveStatus,AttributeName]' --output text)" != $'ENABLED\texpires_at' ]; then
    say "turning on TTL (expires_at) for $table"
    aws dynamodb update-time-to-live --table-name "$table" \
      --time-to-live-specification Enabled=true,AttributeName=expires_at >/dev/null
  fi
  if [ "$(aws dynamodb describe-continuous-backups --table-name "$table" \
    --query 'ContinuousBackupsDescription.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus' --output text)" != ENABLED ]; then
    say "turning on point-in-time recovery for $table"
    aws dynamodb update-continuous-backups --table-name "$table" \
      --point-in-time-recovery-specification PointInTimeRecoveryEnabled=true >/dev/null
  fi
}

pending_index='[{"IndexName":"pending","KeySchema":[{"AttributeName":"pending_type","KeyType":"HASH"},{"AttributeName":"received_at_ms","KeyType":"RANGE"}],"Projection":{"ProjectionType":"KEYS_ONLY"}}]'

ensure_bus() {
  if ! bus_arn=$(aws events describe-event-bus --name "$bus" --query Arn --output text 2>/dev/null); then
    say "creating event bus $bus"
    bus_arn=$(aws events create-event-bus --name "$bus" --query EventBusArn --output text)
  fi
  local found retention_days
  if ! found=$(aws events describe-archive --archive-name "$archive" \
    --query '[ArchiveArn,RetentionDays]' --output text 2>/dev/null); then
    say "creating archive $archive ($archive_retention_days days)"
    archive_arn=$(aws events create-archive --archive-name "$archive" --event-source-arn "$bus_arn" \
      --retention-days "$archive_retention_days" --description "Every forwarded Sendblue event, for replay." \
      --query ArchiveArn --output text)
    return
  fi
  read -r archive_arn retention_days <<<"$found"
  if [ "$retention_days" != "$archive_retention_days" ]; then
    say "archive $archive: retention $archive_retention_days days"
    aws events update-archive --archive-name "$archive" --retention-days "$archive_retention_days" >/dev/null
  fi
}

ensure_log_groups() {
  local binary group existing
  # Every group of the stack with its retention, one "name<TAB>days" line each, in one call.
  existing=$(aws logs describe-log-groups --log-group-name-prefix "/aws/lambda/$STACK_NAME-" \
    --query 'logGroups[].[logGroupName,retentionInDays]' --output text)
  for binary in "${receivers[@]}" forward; do
    group=/aws/lambda/$STACK_NAME-$binary
    if ! grep -q -F -x -e "$group"$'\t'"$log_retention_days" <<<"$existing"; then
      if ! grep -q -F -e "$group"$'\t' <<<"$existing"; then
        say "creating log group $group"
        aws logs create-log-group --log-group-name "$group"
      fi
      aws logs put-retention-policy --log-group-name "$group" --retention-in-days "$log_retention_days"
    fi
  done
}

# The template's ReceiverRole: exactly the calls the receivers make, on exactly these resources.
receiver_policy() {
  local groups="" binary
  for binary in "${receivers[@]}"; do
    groups+="${groups:+,}\"arn:$partition:logs:$region:$account:log-group:/aws/lambda/$STACK_NAME-$binary:*\""
  done
  cat <<JSON
{"Version":"2012-10-17","Statement":[
 {"Sid":"AcceptEvents","Effect":"Allow","Action":["dynamodb:PutItem","dynamodb:GetItem"],"Resource":"$table_arn"},
 {"Sid":"OwnLogs","Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents"],"Resource":[$groups]}]}
JSON
}

# The template's ForwardRole.
forward_policy() {
  cat <<JSON
{"Version":"2012-10-17","Statement":[
 {"Sid":"ReadAndMark","Effect":"Allow","Action":["dynamodb:BatchGetItem","dynamodb:UpdateItem"],"Resource":"$table_arn"},
 {"Sid":"PendingIndex","Effect":"Allow","Action":"dynamodb:Query","Resource":"$table_arn/index/pending"},
 {"Sid":"Stream","Effect":"Allow","Action":["dynamodb:DescribeStream","dynamodb:GetRecords","dynamodb:GetShardIterator","dynamodb:ListStreams"],"Resource":"$stream_arn"},
 {"Sid":"ForwardEvents","Effect":"Allow","Action":"events:PutEvents","Resource":"$bus_arn"},
 {"Sid":"StreamFailures","Effect":"Allow","Action":"sqs:SendMessage","Resource":"$failure_queue_arn"},
 {"Sid":"OwnLogs","Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents"],"Resource":["arn:$partition:logs:$region:$account:log-group:/aws/lambda/$STACK_NAME-forward:*"]}]}
JSON
}

ensure_failure_queue() {
  local url
  # The AWS CLI v1 sends SQS calls to its legacy endpoint whatever AWS_ENDPOINT_URL says.
  url=$(aws sqs ${AWS_ENDPOINT_URL:+--endpoint-url "$AWS_ENDPOINT_URL"} create-queue --queue-name "$failure_queue" \
    --attributes MessageRetentionPeriod=1209600,SqsManagedSseEnabled=true --query QueueUrl --output text)
  failure_queue_arn=$(aws sqs ${AWS_ENDPOINT_URL:+--endpoint-url "$AWS_ENDPOINT_URL"} get-queue-attributes --queue-url "$url" --attribute-names QueueArn \
    --query Attributes.QueueArn --output text)
}

# ensure_role NAME POLICY_NAME POLICY_FUNCTION DESCRIPTION: sets ROLE_ARN.
ensure_role() {
  local name=$1 policy_name=$2 policy=$3 description=$4 trust current
  trust='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"'$account'"}}}]}'
  if ! ROLE_ARN=$(aws iam get-role --role-name "$name" --query Role.Arn --output text 2>/dev/null); then
    say "creating role $name"
    ROLE_ARN=$(aws iam create-role --role-name "$name" --assume-role-policy-document "$trust" \
      --description "$description" --query Role.Arn --output text)
  fi
  current=$(aws iam get-role-policy --role-name "$name" --policy-name "$policy_name" --query PolicyDocument --output json 2>/dev/null || echo null)
  if ! same_json "$current" "$($policy)"; then
    say "writing the $policy_name policy of $name"
    aws iam put-role-policy --role-name "$name" --policy-name "$policy_name" --policy-document "$($policy)"
  fi
}

# environment BINARY: the function's variables, as KEY=VALUE lines; only the proof it checks.
environment() {
  cat <<ENV
DEDUP_TABLE_NAME=$table
EVENT_BUS_NAME=$bus
EVENT_SOURCE=$event_source
DEDUP_TTL_SECONDS=$dedup_ttl_seconds
MAX_BODY_BYTES=$max_body_bytes
METRICS_NAMESPACE=SendblueWebhooks/$STACK_NAME
ENV
  case $1 in
    forward) echo "SWEEP_MIN_AGE_SECONDS=$sweep_min_age_seconds" ;;
    status-callback) echo "SENDBLUE_CALLBACK_TOKENS=$SENDBLUE_CALLBACK_TOKENS" ;;
    contact-created) echo "SENDBLUE_WEBHOOK_SECRETS=$contact_created_secrets" ;;
    *) echo "SENDBLUE_WEBHOOK_SECRETS=$SENDBLUE_WEBHOOK_SECRETS" ;;
  esac
}

# deployed_as_wanted BINARY ENV_FILE ROLE TIMEOUT: whether the function exists with this code
# and configuration (and, for a receiver, a public URL), so that deploying it again would
# change nothing.
deployed_as_wanted() {
  local binary=$1 env_file=$2 role_arn=$3 timeout_seconds=$4 name=$STACK_NAME-$1 zip_sha deployed wanted
  zip_sha=$(openssl dgst -sha256 -binary "target/lambda/$binary/bootstrap.zip" | base64)
  deployed=$(aws lambda get-function-configuration --function-name "$name" --output json \
    --query '{code: CodeSha256, role: Role, memory: MemorySize, timeout: Timeout, runtime: Runtime, env: Environment.Variables}' 2>/dev/null) || return 1
  wanted=$(python3 - "$zip_sha" "$role_arn" "$memory_mb" "$timeout_seconds" "$env_file" <<'PY'
import json, sys
code, role, memory, timeout, env_file = sys.argv[1:]
env = dict(line.split("=", 1) for line in open(env_file).read().splitlines() if line)
print(json.dumps({"code": code, "role": role, "memory": int(memory), "timeout": int(timeout), "runtime": "provided.al2023", "env": env}))
PY
  )
  same_json "$deployed" "$wanted" &&
    { [ "$binary" = forward ] || aws lambda get-function-url-config --function-name "$name" >/dev/null 2>&1; }
}

# deploy_function BINARY ROLE TIMEOUT [cargo lambda deploy flags...]
deploy_function() {
  local binary=$1 role_arn=$2 timeout=$3 name=$STACK_NAME-$1
  shift 3
  environment "$binary" >"$env_file"
  # The zip keeps the binary's time: a fixed one makes the same binary the same zip (and the
  # same CodeSha256), so an unchanged function is recognised and left alone.
  touch -d '2020-01-01T00:00:00Z' "target/lambda/$binary/bootstrap"
  cargo lambda deploy "$name" --binary-name "$binary" --dry >/dev/null # packs bootstrap.zip
  if deployed_as_wanted "$binary" "$env_file" "$role_arn" "$timeout"; then
    say "$name: unchanged"
    return
  fi
  say "deploying $name"
  # Retries cover a role too new to be assumed yet (IAM is eventually consistent).
  cargo lambda deploy "$name" --binary-name "$binary" --iam-role "$role_arn" --env-file "$env_file" \
    --memory "$memory_mb" --timeout "$timeout" --retry-attempts 6 "$@" >/dev/null
}

deploy_functions() {
  local binary
  for binary in "${receivers[@]}"; do
    deploy_function "$binary" "$receiver_role_arn" "$timeout_seconds" --enable-function-url \
      --description "Sendblue $binary webhooks ($STACK_NAME)"
  done
  deploy_function forward "$forward_role_arn" 60 \
    --description "Puts accepted Sendblue events on the bus ($STACK_NAME)"
}

# The template's stream mapping and sweep schedule, for the forward function.
ensure_forward_triggers() {
  local function_arn uuid rule_arn
  function_arn=$(aws lambda get-function --function-name "$STACK_NAME-forward" --query Configuration.FunctionArn --output text)
  uuid=$(aws lambda list-event-source-mappings --function-name "$STACK_NAME-forward" --event-source-arn "$stream_arn" \
    --query 'EventSourceMappings[0].UUID' --output text)
  if [ "$uuid" = None ] || [ -z "$uuid" ]; then
    say "mapping the stream of $table to $STACK_NAME-forward"
    aws lambda create-event-source-mapping --function-name "$STACK_NAME-forward" --event-source-arn "$stream_arn" \
      --starting-position TRIM_HORIZON --batch-size 10 --maximum-batching-window-in-seconds 0 \
      --bisect-batch-on-function-error --maximum-retry-attempts 20 --maximum-record-age-in-seconds 3600 \
      --function-response-types ReportBatchItemFailures \
      --destination-config "{\"OnFailure\":{\"Destination\":\"$failure_queue_arn\"}}" \
      --filter-criteria '{"Filters":[{"Pattern":"{\"dynamodb\": {\"NewImage\": {\"status\": {\"S\": [\"PENDING\"]}}}}"}]}' >/dev/null
  fi
  rule_arn=$(aws events put-rule --name "$sweep_rule" --schedule-expression 'rate(5 minutes)' \
    --description "The forward function's sweep ($STACK_NAME)" --query RuleArn --output text)
  aws events put-targets --rule "$sweep_rule" --targets "Id=forward,Arn=$function_arn" >/dev/null
  if ! aws lambda get-policy --function-name "$STACK_NAME-forward" --output text 2>/dev/null | grep -q sweep; then
    aws lambda add-permission --function-name "$STACK_NAME-forward" --statement-id sweep \
      --action lambda:InvokeFunction --principal events.amazonaws.com --source-arn "$rule_arn" >/dev/null
  fi
}

# The outputs as the template names them: `<Function>Url` (the status callback's
# `StatusCallbackUrlBase`, its URL plus `status-callback/`, where the token is appended).
print_outputs() {
  local binary url
  {
    for binary in "${receivers[@]}"; do
      url=$(aws lambda get-function-url-config --function-name "$STACK_NAME-$binary" --query FunctionUrl --output text)
      printf 'url\t%s\t%s\n' "$binary" "$url"
    done
    printf 'output\t%s\t%s\n' EventBusName "$bus" EventBusArn "$bus_arn" EventArchiveArn "$archive_arn" DedupTableName "$table" \
      EventSource "$event_source" DedupTtlSeconds "$dedup_ttl_seconds"
    [ -z "$sendblue_numbers" ] || printf 'output\t%s\t%s\n' SendblueNumbers "$sendblue_numbers"
  } | python3 -c '
import json, sys
outputs = []
for line in sys.stdin:
    kind, name, value = line.rstrip("\n").split("\t")
    if kind == "url":
        key = "".join(word.title() for word in name.split("-")) + "Url"
        value = value.rstrip("/") + "/"
        if name == "status-callback":
            key, value = key + "Base", value + "status-callback/"
        name = key
    outputs.append({"OutputKey": name, "OutputValue": value})
print(json.dumps(outputs, indent=2))'
}

say "building ${receivers[*]} forward for ${1} (cargo lambda build --release)"
cargo lambda build --release "$build_flag" $(printf -- '--bin %s ' "${receivers[@]}" forward) >&2
ensure_table
ensure_bus
ensure_failure_queue
ensure_log_groups
ensure_role "$role" receiver receiver_policy "The Sendblue receivers; exactly the calls they make, on exactly these resources."
receiver_role_arn=$ROLE_ARN
ensure_role "$forward_role" forward forward_policy "The Sendblue forward function; exactly the calls it makes, on exactly these resources."
forward_role_arn=$ROLE_ARN
deploy_functions
ensure_forward_triggers
print_outputs
say "done: register the URLs with \`sendblue-webhooks register --stack-outputs FILE\`"

"""The baseline BENCHMARKS.md compares with: what teams deploy otherwise, a Python Lambda taking
Sendblue's `receive` webhook with Powertools' idempotency utility on DynamoDB, forwarding to
EventBridge. It is written as the Powertools documentation shows, with the same checks as the
Rust receiver's happy path (constant-time secret check, JSON body, key `message_handle`). Not
part of the product: it exists to be measured (bench/e2e.py).
"""

import hmac
import json
import os

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

SECRETS = [s.strip() for s in os.environ["SENDBLUE_WEBHOOK_SECRETS"].split(",") if s.strip()]
BUS = os.environ["EVENT_BUS_NAME"]
persistence = DynamoDBPersistenceLayer(table_name=os.environ["DEDUP_TABLE_NAME"], key_attr="pk")
config = IdempotencyConfig(
    event_key_jmespath="message_handle",
    expires_after_seconds=86400,
    # Marks an answer served from the store, so that duplicates can be told apart.
    response_hook=lambda response, record: {**response, "duplicate": True},
)
events = boto3.client("events")


@idempotent_function(data_keyword_argument="message", config=config, persistence_store=persistence)
def forward(message):
    events.put_events(Entries=[{
        "Source": "sendblue",
        "DetailType": "receive",
        "Detail": json.dumps({"metadata": {"dedup_key": message["message_handle"]}, "data": message}),
        "EventBusName": BUS,
    }])
    return {"status": "OK"}


def answer(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def handler(event, context):
    presented = (event.get("headers") or {}).get("sb-signing-secret", "")
    if not any(hmac.compare_digest(presented.encode(), s.encode()) for s in SECRETS):
        return answer(401, {"status": "ERROR", "message": "invalid sb-signing-secret"})
    try:
        message = json.loads(event.get("body") or "")
    except ValueError:
        return answer(400, {"status": "ERROR", "message": "body is not JSON"})
    if not isinstance(message, dict) or not message.get("message_handle"):
        return answer(400, {"status": "ERROR", "message": "missing field message_handle"})
    config.register_lambda_context(context)
    try:
        return answer(200, forward(message=message))
    except IdempotencyAlreadyInProgressError:
        return answer(503, {"status": "ERROR", "message": "in progress; retry later"})

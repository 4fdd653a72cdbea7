"""Cold start, warm latency and peak RSS of one function binary, driven through the Lambda
Runtime API as Lambda drives it (a minimal Runtime API server of our own, on loopback).

Each run starts the binary afresh and hands it three invocations: a new event, the same event
again (a duplicate), and another new event. Measured per run, for the function process alone:
  ready_ms      process start -> its first GET /next (init done: config, SDK clients)
  first_ms      process start -> the first answer (cold start as a caller sees it)
  new_warm_ms   GET /next -> answer, for the second new event (warm)
  duplicate_ms  GET /next -> answer, for the duplicate (warm)
  peak_rss_mb   VmHWM of the process after the three invocations

  python bench/coldstart.py --binary target/release/receive --event events/receive.json \
      --runs 20 [--dynamodb URL --moto URL]   (AWS mode against the emulators; else local mode)
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts"))
from runtime_api import RuntimeApi  # noqa: E402


def with_handle(event_text, handle):
    event = json.loads(event_text)
    body = json.loads(event["body"])
    for field in ("message_handle", "call_id", "contact_id"):
        if field in body:
            body[field] = handle
    if not any(f in body for f in ("message_handle", "call_id", "contact_id")):
        body["bench_id"] = handle  # types keyed by the body hash
    event["body"] = json.dumps(body)
    return json.dumps(event).encode()


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def one_run(args, env):
    event_text = open(args.event).read()
    first, second = (with_handle(event_text, f"bench-{uuid.uuid4()}") for _ in range(2))
    api = RuntimeApi([first, first, second])
    env = dict(env, AWS_LAMBDA_RUNTIME_API=api.start())
    started = time.perf_counter()
    process = subprocess.Popen([args.binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not api.done.wait(30):
            raise RuntimeError(f"the function did not finish its invocations: {api.answers}")
        rss = peak_rss_mb(process.pid)
    finally:
        process.kill()
        process.wait()
        api.shutdown()
    statuses = [json.loads(body).get("statusCode") for _, body in api.answers]
    if statuses != [200, 200, 200]:
        raise RuntimeError(f"unexpected answers: {api.answers}")
    ms = lambda a, b: (api.marks[b] - api.marks[a]) * 1000
    api.marks["start"] = started
    return {
        "ready_ms": ms("start", "next0"),
        "first_ms": ms("start", "answer0"),
        "duplicate_ms": ms("next1", "answer1"),
        "new_warm_ms": ms("next2", "answer2"),
        "peak_rss_mb": rss,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--event", required=True)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--dynamodb")
    parser.add_argument("--moto")
    args = parser.parse_args()

    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "us-east-1",
        "SENDBLUE_WEBHOOK_SECRETS": "local-dev-secret",
    }
    if args.dynamodb and args.moto:
        import boto3

        session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
        table, bus = f"bench-{uuid.uuid4().hex[:8]}", f"bench-{uuid.uuid4().hex[:8]}"
        session.client("dynamodb", endpoint_url=args.dynamodb).create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        session.client("events", endpoint_url=args.moto).create_event_bus(Name=bus)
        env.update({
            "DEDUP_TABLE_NAME": table, "EVENT_BUS_NAME": bus,
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_ENDPOINT_URL_DYNAMODB": args.dynamodb, "AWS_ENDPOINT_URL_EVENTBRIDGE": args.moto,
        })
        mode = "aws (DynamoDB Local, moto)"
    else:
        env["RECEIVER_MODE"] = "local"
        mode = "local (in memory)"

    runs = [one_run(args, env) for _ in range(args.runs)]
    print(f"{os.path.basename(args.binary)}, {mode}, {args.runs} runs: min / median / max")
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(f"  {key:13} {min(values):8.2f} {statistics.median(values):8.2f} {max(values):8.2f}")


if __name__ == "__main__":
    main()

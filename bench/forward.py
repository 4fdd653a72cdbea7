"""The `forward` function's CPU per event, at stream batch sizes of 1 and 10, as a process driven
through the Lambda Runtime API (scripts/runtime_api.py) against DynamoDB Local and moto.

Each run: a fresh table shaped as template.yaml's (with its stream) and a fresh bus; the real
`receive` binary accepts EVENTS events through the Runtime API; the table's stream is read
(DynamoDB Local's DescribeStream, GetShardIterator, GetRecords) into batches of the size asked,
in the `{"Records": [...]}` shape Lambda's event source mapping sends; then the `forward`
binary is started afresh and handed those batches, one per invocation. The first batch is the
cold invocation; CPU is the process's own (all threads, /proc/<pid>/task/*/schedstat) over the
rest, divided by the events they carried: one consistent BatchGetItem, one PutEvents and one
conditional UpdateItem (the mark) per event forwarded. Every answer must report no failure and
every item must end FORWARDED, or the run fails.

  python bench/forward.py --dynamodb URL --moto URL [--runs 5] [--events 200] [--batch 1 --batch 10]
      [--forward target/release/forward]
"""

import argparse
import datetime
import json
import pathlib
import statistics
import subprocess
import sys
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from e2e import aws_environment, cpu_ns, lambda_environment, peak_rss_mb, print_table, with_handle  # noqa: E402
from runtime_api import RuntimeApi  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def drive(command, env, invocations, deadline_ms=30_000):
    """Runs `command` through a Runtime API that hands it `invocations`; the API afterwards."""
    api = RuntimeApi(invocations, deadline_ms=deadline_ms)
    env = dict(env, AWS_LAMBDA_RUNTIME_API=api.start())
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api.probe = lambda: cpu_ns(process.pid)
    try:
        if not api.done.wait(600):
            raise RuntimeError(f"{command[0]} did not finish its invocations: {api.answers[-3:]}")
        api.peak_rss_mb = peak_rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(10)
        api.shutdown()
    return api


def plain(value):
    """A stream record as Lambda's JSON carries it (boto3 gives times as datetimes)."""
    if isinstance(value, datetime.datetime):
        return int(value.timestamp())
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def stream_records(streams, dynamodb, table):
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator)
            if not page["Records"]:
                break
            records.extend(plain(r) for r in page["Records"])
            iterator = page.get("NextShardIterator")
    return records


def one_run(args, base_env, batch_size):
    import boto3

    env = dict(base_env, **aws_environment(args.dynamodb, args.moto))
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    dynamodb = session.client("dynamodb", endpoint_url=args.dynamodb)
    streams = session.client("dynamodbstreams", endpoint_url=args.dynamodb)
    event_text = open(ROOT / "events/receive.json").read()
    accepted = drive([str(ROOT / "target/release/receive")], env,
                     [with_handle(event_text, f"fwd-{uuid.uuid4()}") for _ in range(args.events)])
    assert all(json.loads(body)["statusCode"] == 200 for _, body in accepted.answers)
    records = [r for r in stream_records(streams, dynamodb, env["DEDUP_TABLE_NAME"]) if r["eventName"] == "INSERT"]
    assert len(records) == args.events, f"{len(records)} stream records for {args.events} events"
    for record in records:
        record.update(eventSource="aws:dynamodb", awsRegion="us-east-1")
    batches = [records[i:i + batch_size] for i in range(0, len(records), batch_size)]
    api = drive([args.forward], env,
                [json.dumps({"Records": batch}).encode() for batch in batches])
    for _, answer in api.answers:
        assert json.loads(answer) == {"batchItemFailures": []}, answer
    items = dynamodb.scan(TableName=env["DEDUP_TABLE_NAME"], ConsistentRead=True)["Items"]
    assert len(items) == args.events and all(i["status"]["S"] == "FORWARDED" for i in items), items[:1]
    warm_events = len(records) - len(batches[0])
    last = len(batches)
    ms = lambda a, b: (api.marks[b] - api.marks[a]) * 1000
    return {
        "cold_invocation_ms": ms("next0", "answer0"),
        "warm_invocation_ms": statistics.median(ms(f"next{i}", f"answer{i}") for i in range(1, last)),
        "cpu_per_event_ms": (api.cpu_ns[last] - api.cpu_ns[1]) / warm_events / 1e6,
        "peak_rss_mb": api.peak_rss_mb,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dynamodb", required=True)
    parser.add_argument("--moto", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--batch", type=int, action="append")
    parser.add_argument("--forward", default=str(ROOT / "target/release/forward"), help="the binary")
    args = parser.parse_args()
    base_env = lambda_environment()
    sizes = args.batch or [1, 10]
    results = {f"batch {size}": [one_run(args, base_env, size) for _ in range(args.runs)] for size in sizes}
    print(f"forward, {args.runs} runs of {args.events} events each, min / median / max")
    print_table(results)

if __name__ == "__main__":
    main()

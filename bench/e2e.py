"""End to end: function processes driven through the Lambda Runtime API as Lambda drives them
(scripts/runtime_api.py, on loopback), measured for the function process alone, side by side.

Each run starts the function afresh and hands it one new event (the cold invocation), then
WARM new events, then the same WARM events again (duplicates). Per run:
  ready_ms        process start -> its first GET /next (init: configuration, SDK clients)
  first_ms        process start -> the first answer (cold start as a caller sees it)
  new_ms          GET /next -> answer, median over the warm new events
  duplicate_ms    GET /next -> answer, median over the duplicates
  cpu_new_ms      the process's CPU time (all threads, /proc/<pid>/task/*/schedstat) per warm
                  new event, including its own Runtime API calls
  cpu_duplicate_ms  the same per duplicate
  kernel_cpu_share  the share of the process's CPU time spent in the kernel (system calls)
  peak_rss_mb     VmHWM of the process at the end
and across runs min / median / max.

  python bench/e2e.py --event events/receive.json --runs 10 --warm 100 \
      --function receive=target/release/receive [--function NAME=COMMAND ...] \
      [--dynamodb URL --moto URL]    (AWS mode against the emulators; else RECEIVER_MODE=local)

Every function gets the same environment: SENDBLUE_WEBHOOK_SECRETS, and in AWS mode a fresh
table (partition key `pk`) and bus, DEDUP_TABLE_NAME, EVENT_BUS_NAME and the endpoint variables.
"""

import argparse
import glob
import json
import os
import pathlib
import shlex
import statistics
import subprocess
import sys
import time
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts"))
from runtime_api import RuntimeApi  # noqa: E402
from template_shape import dedup_table_keys  # noqa: E402

KEY_FIELDS = ("message_handle", "call_id", "contact_id")


def with_handle(event_text, handle):
    """The event with a body whose dedup key is `handle`."""
    event = json.loads(event_text)
    body = json.loads(event["body"])
    keyed = [f for f in KEY_FIELDS if f in body]
    for field in keyed:
        body[field] = handle
    if not keyed:
        body["bench_id"] = handle  # types keyed by the body hash
    event["body"] = json.dumps(body)
    return json.dumps(event).encode()


def cpu_ns(pid):
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            total += int(open(path).read().split()[0])
        except (OSError, ValueError):
            pass  # a thread that just ended
    return total


def kernel_share(pid):
    """The share of the process's CPU time spent in the kernel (utime, stime of /proc/<pid>/stat)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    user, system = int(fields[11]), int(fields[12])
    return system / (user + system) if user + system else float("nan")


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def one_run(command, env, event_text, warm):
    cold = with_handle(event_text, f"bench-{uuid.uuid4()}")
    news = [with_handle(event_text, f"bench-{uuid.uuid4()}") for _ in range(warm)]
    api = RuntimeApi([cold, *news, *news], deadline_ms=30_000)
    env = dict(env, AWS_LAMBDA_RUNTIME_API=api.start())
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api.probe = lambda: cpu_ns(process.pid)
    try:
        if not api.done.wait(600):
            raise RuntimeError(f"the function did not finish its invocations: {api.answers[-3:]}")
        rss = peak_rss_mb(process.pid)
        in_kernel = kernel_share(process.pid)
    finally:
        process.terminate()  # lets a wrapper such as a profiler finish its output
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        api.shutdown()
    statuses = [json.loads(body).get("statusCode") for _, body in api.answers]
    if statuses != [200] * len(statuses) or len(statuses) != 1 + 2 * warm:
        raise RuntimeError(f"unexpected answers: {sorted(set(map(str, statuses)))}")
    duplicates = [json.loads(json.loads(body)["body"]).get("duplicate") for _, body in api.answers]
    # A function that tells no duplicate apart (the bare floor) is not held to it.
    judged = any(d is not None for d in duplicates)
    if judged and (any(duplicates[: 1 + warm]) or not all(duplicates[1 + warm:])):
        raise RuntimeError("a new event was taken for a duplicate, or the other way round")
    ms = lambda a, b: (api.marks[b] - api.marks[a]) * 1000
    api.marks["start"] = started
    latency = lambda i: ms(f"next{i}", f"answer{i}")
    end = 1 + 2 * warm  # the GET /next after the last answer
    return {
        "ready_ms": ms("start", "next0"),
        "first_ms": ms("start", "answer0"),
        "new_ms": statistics.median(latency(i) for i in range(1, 1 + warm)),
        "duplicate_ms": statistics.median(latency(i) for i in range(1 + warm, end)),
        "cpu_new_ms": (api.cpu_ns[1 + warm] - api.cpu_ns[1]) / warm / 1e6,
        "cpu_duplicate_ms": (api.cpu_ns[end] - api.cpu_ns[1 + warm]) / warm / 1e6,
        "kernel_cpu_share": in_kernel,
        "peak_rss_mb": rss,
    }


def aws_environment(dynamodb, moto):
    import boto3

    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    table, bus = f"bench-{uuid.uuid4().hex[:8]}", f"bench-{uuid.uuid4().hex[:8]}"
    session.client("dynamodb", endpoint_url=dynamodb).create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST", **dedup_table_keys())
    session.client("events", endpoint_url=moto).create_event_bus(Name=bus)
    return {
        "DEDUP_TABLE_NAME": table, "EVENT_BUS_NAME": bus,
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb, "AWS_ENDPOINT_URL_EVENTBRIDGE": moto,
    }


def lambda_environment():
    """What Lambda sets for every function, and the sample events' secret."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SENDBLUE_WEBHOOK_SECRETS": "local-dev-secret",
    }


def print_table(results):
    """One row per figure, one column per function: min / median / max over its runs."""
    names = list(results)
    print("| figure | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for key in results[names[0]][0]:
        cells = []
        for name in names:
            values = [run[key] for run in results[name]]
            cells.append(f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}")
        print(f"| {key} | " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--function", action="append", required=True, metavar="NAME=COMMAND")
    parser.add_argument("--event", required=True)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warm", type=int, default=100)
    parser.add_argument("--dynamodb")
    parser.add_argument("--moto")
    parser.add_argument("--json", help="also write every run's figures to this file")
    args = parser.parse_args()

    aws = args.dynamodb and args.moto
    mode = "AWS mode (DynamoDB Local, moto)" if aws else "local mode (in memory)"
    event_text = open(args.event).read()
    results = {}
    for spec in args.function:
        name, command = spec.split("=", 1)
        env = dict(lambda_environment(), **(aws_environment(args.dynamodb, args.moto) if aws else {"RECEIVER_MODE": "local"}))
        results[name] = [one_run(shlex.split(command), env, event_text, args.warm) for _ in range(args.runs)]

    print(f"{mode}; {args.runs} runs of 1 cold + {args.warm} new + {args.warm} duplicate events; min / median / max")
    print_table(results)
    if args.json:
        json.dump({"mode": mode, "results": results}, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()

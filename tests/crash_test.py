"""A real crash: the `receive` binary, run through a Lambda Runtime API as Lambda runs it, is
killed (SIGKILL) as soon as its one write is in the table, before its answer reaches Sendblue.
The event is safe (pending, for `forward`), and Sendblue's retry is at once a 200 duplicate:
nothing waits for a lease, and the receiver puts nothing on the bus itself. Then the real
`forward` binary, invoked as its schedule invokes it, puts the event on the bus once.

Run by scripts/test.sh, with the emulators' endpoints in the environment and the debug binaries
built: python -m unittest tests/crash_test.py
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time
import unittest
import uuid

import boto3

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from runtime_api import RuntimeApi  # noqa: E402
from template_shape import dedup_table_keys  # noqa: E402

BINARY = ROOT / "target" / "debug" / "receive"
FORWARD = ROOT / "target" / "debug" / "forward"
# Long enough for a fresh process to start and answer within it on a loaded 2-core machine.
DEADLINE_MS = 10_000


def black_hole(test):
    """An endpoint that accepts connections and never answers: a hanging EventBridge, which a
    receiver must never need."""
    listener = socket.create_server(("127.0.0.1", 0))
    test.addCleanup(listener.close)
    held = []

    def accept():
        while True:
            held.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


class KilledAfterTheWrite(unittest.TestCase):
    def setUp(self):
        session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
        self.dynamodb_url = os.environ["SENDBLUE_TEST_DYNAMODB_ENDPOINT"]
        self.moto_url = os.environ["SENDBLUE_TEST_MOTO_ENDPOINT"]
        self.dynamodb = session.client("dynamodb", endpoint_url=self.dynamodb_url)
        self.sqs = session.client("sqs", endpoint_url=self.moto_url)
        events = session.client("events", endpoint_url=self.moto_url)
        suffix = uuid.uuid4().hex[:12]
        self.table, self.bus = f"crash-{suffix}", f"crash-{suffix}"
        self.dynamodb.create_table(
            TableName=self.table, BillingMode="PAY_PER_REQUEST", **dedup_table_keys())
        events.create_event_bus(Name=self.bus)
        self.queue_url = self.sqs.create_queue(QueueName=f"crash-{suffix}")["QueueUrl"]
        events.put_rule(Name="all", EventBusName=self.bus, EventPattern='{"source":["sendblue"]}')
        events.put_targets(Rule="all", EventBusName=self.bus, Targets=[
            {"Id": "queue", "Arn": f"arn:aws:sqs:us-east-1:123456789012:crash-{suffix}"}])

        self.handle = f"crash-{uuid.uuid4()}"
        event = json.loads((ROOT / "events" / "receive.json").read_text())
        body = json.loads(event["body"])
        body["message_handle"] = self.handle
        event["body"] = json.dumps(body)
        self.event = json.dumps(event).encode()

    def start(self, api, eventbridge_url, binary=BINARY, **settings):
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_LAMBDA_RUNTIME_API": api.start(),
            "AWS_LAMBDA_FUNCTION_NAME": "receive",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_url,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": eventbridge_url,
            "DEDUP_TABLE_NAME": self.table,
            "EVENT_BUS_NAME": self.bus,
            "SENDBLUE_WEBHOOK_SECRETS": "local-dev-secret",
            **settings,
        }
        return subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def invoke(self, event, binary=BINARY, deadline_ms=DEADLINE_MS, **settings):
        """One invocation of a fresh, healthy process; returns its answer."""
        api = RuntimeApi([event], deadline_ms=deadline_ms)
        process = self.start(api, self.moto_url, binary, **settings)
        try:
            self.assertTrue(api.done.wait(20), f"{binary.name} answered")
        finally:
            process.kill()
            process.wait()
            api.shutdown()
        return json.loads(api.answers[0][1])

    def deliver(self):
        """One delivery; returns the answer's status code and whether it was a duplicate."""
        answer = self.invoke(self.event)
        return answer["statusCode"], json.loads(answer["body"]).get("duplicate", False)

    def sweep(self):
        """The forward function as its schedule invokes it (its timeout, 60 s, as the template
        sets it: a sweep stops 10 s before its deadline), sweeping events a second old."""
        return self.invoke(b"{}", FORWARD, 60_000, AWS_LAMBDA_FUNCTION_NAME="forward", SWEEP_MIN_AGE_SECONDS="1")

    def claim(self):
        key = {"pk": {"S": f"receive#{self.handle}"}}
        return self.dynamodb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")

    def forwarded(self):
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"])["detail"]["metadata"]["dedup_key"] for m in messages]

    def test_the_event_is_safe_and_the_retry_is_a_duplicate_at_once(self):
        api = RuntimeApi([self.event], deadline_ms=DEADLINE_MS)
        dying = self.start(api, black_hole(self))
        try:
            for _ in range(200):
                if self.claim():
                    break
                time.sleep(0.05)
            else:
                self.fail("the function never wrote the event")
        finally:
            dying.kill()
            dying.wait()
            api.shutdown()
        item = self.claim()
        self.assertEqual(item["status"]["S"], "PENDING")
        self.assertEqual(json.loads(item["body"]["S"])["message_handle"], self.handle, "the whole event")

        self.assertEqual(self.deliver(), (200, True), "the retry: a duplicate at once, no lease to wait out")
        self.assertEqual(self.claim()["write_id"], item["write_id"], "the first write stands")
        self.assertEqual(self.forwarded(), [], "receivers put nothing on the bus: forward does")

        time.sleep(1.1)
        swept = self.sweep()
        self.assertEqual(swept["forwarded"], 1, swept)
        self.assertEqual(self.forwarded(), [self.handle], "on the bus once")
        self.assertEqual(self.claim()["status"]["S"], "FORWARDED")
        self.assertEqual(self.sweep()["forwarded"], 0, "and not again")


if __name__ == "__main__":
    unittest.main()

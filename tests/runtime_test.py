"""The real function binaries, run through a Lambda Runtime API as Lambda runs them: what their
logs carry at the most verbose level a user can set, how they refuse to start on a bad setting
(both in local mode, no AWS needed), and the metrics they print against DynamoDB Local and moto,
compared with what the template's alarms and dashboard read.

Run by scripts/test.sh after the debug binaries are built, with the emulators' endpoints in the
environment: python -m unittest tests/runtime_test.py
"""

import json
import os
import pathlib
import subprocess
import sys
import unittest
import uuid

import boto3

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from runtime_api import RuntimeApi  # noqa: E402
from template_shape import dedup_table_keys, load_template  # noqa: E402

BINARIES = ROOT / "target" / "debug"
SECRET = "local-dev-secret"
CALLBACK_TOKEN = "local-dev-callback-token-0123456789abcdef"


def fixture(name):
    return (ROOT / "events" / f"{name}.json").read_bytes()


def environment(**extra):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_FUNCTION_NAME": "test",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1",
    }
    env.update(extra)
    return env


def run(binary, events, env):
    """Runs `binary` until it has answered every event; returns (answers, stdout, stderr)."""
    api = RuntimeApi(events)
    env = dict(env, AWS_LAMBDA_RUNTIME_API=api.start())
    process = subprocess.Popen([BINARIES / binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        api.done.wait(30)
    finally:
        process.kill()
        stdout, stderr = process.communicate()
        api.shutdown()
        api.server_close()
    return [json.loads(body) for _, body in api.answers], stdout.decode(), stderr.decode()


class LogsAtTheMostVerboseLevel(unittest.TestCase):
    """RUST_LOG=trace and the function's log level at TRACE: lambda_runtime would log every raw
    invocation, with its secret header, its callback token and its body."""

    VERBOSE = {"RUST_LOG": "trace", "AWS_LAMBDA_LOG_LEVEL": "TRACE", "RECEIVER_MODE": "local"}

    def check(self, binary, fixture_name, env, forbidden):
        answers, stdout, stderr = run(binary, [fixture(fixture_name)], environment(**self.VERBOSE, **env))
        self.assertEqual([a["statusCode"] for a in answers], [200], stderr[-2000:])
        self.assertIn('"message":"request"', stderr, "the request line was logged")
        body = json.loads(json.loads(fixture(fixture_name))["body"])
        for value in [*forbidden, body["content"]]:
            self.assertNotIn(value, stderr, f"logged {value!r}")
        return stdout

    def test_no_secret_and_no_content_reach_the_logs_of_a_webhook(self):
        self.check("receive", "receive", {"SENDBLUE_WEBHOOK_SECRETS": SECRET}, [SECRET])

    def test_no_token_and_no_content_reach_the_logs_of_a_status_callback(self):
        env = {"SENDBLUE_CALLBACK_TOKENS": CALLBACK_TOKEN}
        self.check("status-callback", "status-callback", env, [CALLBACK_TOKEN])


class RefusesToStart(unittest.TestCase):
    """A bad setting stops the function before it takes an invocation, naming the variable."""

    GOOD = {
        "DEDUP_TABLE_NAME": "dedup",
        "EVENT_BUS_NAME": "bus",
        "SENDBLUE_WEBHOOK_SECRETS": SECRET,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }

    def refused(self, **changes):
        env = environment(**{k: v for k, v in {**self.GOOD, **changes}.items() if v is not None})
        api = RuntimeApi([fixture("receive")])
        env["AWS_LAMBDA_RUNTIME_API"] = api.start()
        try:
            result = subprocess.run([BINARIES / "receive"], env=env, capture_output=True, timeout=30)
        finally:
            api.shutdown()
            api.server_close()
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(api.served, 0, "no invocation was taken")
        return result.stderr.decode()

    def test_a_missing_or_invalid_setting_is_named(self):
        for changes, variable in [
            ({"DEDUP_TABLE_NAME": None}, "DEDUP_TABLE_NAME"),
            ({"DEDUP_TABLE_NAME": "my table"}, "DEDUP_TABLE_NAME"),
            ({"EVENT_SOURCE": "aws.sendblue"}, "EVENT_SOURCE"),
            ({"DEDUP_TTL_SECONDS": "1h"}, "DEDUP_TTL_SECONDS"),
            ({"SENDBLUE_WEBHOOK_SECRETS": " , "}, "SENDBLUE_WEBHOOK_SECRETS"),
        ]:
            with self.subTest(changes=changes):
                stderr = self.refused(**changes)
                self.assertIn(variable, stderr)
                self.assertNotIn(SECRET, stderr)


def our_alarm_metrics(template):
    """(alarm, metric name, {dimension: value}) for every alarm on the functions' namespace."""
    found = []
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        stats += [props] if "MetricName" in props else []
        for metric in stats:
            if "SendblueWebhooks/" in json.dumps(metric["Namespace"]):
                found.append((name, metric["MetricName"], {d["Name"]: d["Value"] for d in metric["Dimensions"]}))
    return found


class MetricsAsEmitted(unittest.TestCase):
    """The EMF lines a real function prints, against what the alarms and the dashboard read."""

    def setUp(self):
        session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
        self.dynamodb_url = os.environ["SENDBLUE_TEST_DYNAMODB_ENDPOINT"]
        self.moto_url = os.environ["SENDBLUE_TEST_MOTO_ENDPOINT"]
        suffix = uuid.uuid4().hex[:12]
        self.table, self.bus = f"metrics-{suffix}", f"metrics-{suffix}"
        session.client("dynamodb", endpoint_url=self.dynamodb_url).create_table(
            TableName=self.table, BillingMode="PAY_PER_REQUEST", **dedup_table_keys())
        session.client("events", endpoint_url=self.moto_url).create_event_bus(Name=self.bus)

    def test_the_alarms_read_what_the_functions_print(self):
        namespace = "SendblueWebhooks/test-stack"
        env = environment(
            AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
            AWS_ENDPOINT_URL_DYNAMODB=self.dynamodb_url, AWS_ENDPOINT_URL_EVENTBRIDGE=self.moto_url,
            DEDUP_TABLE_NAME=self.table, EVENT_BUS_NAME=self.bus, SENDBLUE_WEBHOOK_SECRETS=SECRET,
            METRICS_NAMESPACE=namespace)
        events = [fixture("receive"), fixture("receive"), fixture("bad/wrong-secret"), fixture("bad/not-json")]
        answers, stdout, stderr = run("receive", events, env)
        self.assertEqual([a["statusCode"] for a in answers], [200, 200, 401, 400], stderr[-2000:])

        lines = [json.loads(line) for line in stdout.splitlines() if '"_aws"' in line]
        self.assertEqual(len(lines), 4, "one EMF line per request")
        emitted = set()
        for line in lines:
            directive = line["_aws"]["CloudWatchMetrics"][0]
            self.assertEqual(directive["Namespace"], namespace)
            for dimensions in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    self.assertIn(metric["Name"], line, "each metric is a member of the line")
                    emitted.add((metric["Name"], tuple(dimensions), tuple(line[d] for d in dimensions)))
        self.assertEqual(
            {values[0] for name, dims, values in emitted if dims == ("Outcome",)},
            {"accepted", "duplicate", "unauthorized", "bad_body"})

        template = load_template()
        shapes = {(name, dims) for name, dims, _ in emitted}
        watched = our_alarm_metrics(template)
        self.assertTrue(watched)
        for alarm, metric, dimensions in watched:
            if dimensions.get("Function") == "reconcile" or "Trigger" in dimensions:
                continue  # the reconcile and forward functions' own metrics (template_contract.py)
            self.assertIn((metric, tuple(dimensions)), shapes, f"{alarm} reads a metric the functions print")
        # The refusals alarm counts exactly the outcomes these refused deliveries were given.
        refused = {d["Outcome"] for a, _, d in watched if a == "RefusedDeliveriesAlarm"}
        self.assertLessEqual({"unauthorized", "bad_body"}, refused)
        dashboard = json.dumps(template["Resources"]["Dashboard"]["Properties"]["DashboardBody"])
        for name, dims, values in emitted:
            if dims == ("Outcome",) and name == "Requests":
                self.assertIn(f'\\"{values[0]}\\"', dashboard, f"{values[0]} on the dashboard")


if __name__ == "__main__":
    unittest.main()

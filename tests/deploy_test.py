"""scripts/deploy-cargo-lambda.sh run twice against moto, then scripts/destroy-cargo-lambda.sh:
the resources that result, the role's exact policy (the template's), each function's
environment, the outputs `register` reads, a second run that changes nothing, and what the
destroy script leaves.

Run by scripts/test.sh (after `sam build`, so that cargo-lambda's release build is warm) with
the SAM virtualenv's Python (boto3, and cfn-lint's decoder for the template), against a moto of
its own: SENDBLUE_TEST_MOTO_ENDPOINT=http://127.0.0.1:PORT python -m unittest tests/deploy_test.py
The methods are numbered: they run in that order, on one deployment.
"""

import json
import os
import pathlib
import subprocess
import unittest

import boto3
from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parent.parent
STACK = f"deploytest{os.getpid()}"
SECRETS = "deploy-secret-one,deploy-secret-two"
CONTACT_CREATED_SECRETS = "deploy-contact-secret"
TOKENS = "t" * 40
RECEIVERS = sorted(p.name for p in (ROOT / "functions").iterdir() if (ROOT / "events" / f"{p.name}.json").exists())
ENDPOINT = os.environ.get("SENDBLUE_TEST_MOTO_ENDPOINT", "")


def environment(**more):
    tools = ROOT / ".tools"
    env = dict(os.environ)
    env.update(
        PATH=f"{tools / 'venv' / 'bin'}:{tools / 'aws-venv' / 'bin'}:{os.environ['PATH']}",  # cargo-lambda finds zig through the first python3
        AWS_ENDPOINT_URL=ENDPOINT,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        STACK_NAME=STACK,
        SENDBLUE_WEBHOOK_SECRETS=SECRETS,
        SENDBLUE_CONTACT_CREATED_SECRETS=CONTACT_CREATED_SECRETS,
        SENDBLUE_CALLBACK_TOKENS=TOKENS,
    )
    env.update(more)
    return env


def run(*command):
    done = subprocess.run(command, cwd=ROOT, env=environment(), capture_output=True, text=True)
    assert done.returncode == 0, f"{command} failed ({done.returncode}):\n{done.stderr}"
    return done


def client(service):
    return boto3.client(service, endpoint_url=ENDPOINT, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def snapshot():
    """Everything the deploy script makes, as AWS describes it (volatile counters left out)."""
    aws_lambda, iam, logs = client("lambda"), client("iam"), client("logs")
    state = {}
    for binary in RECEIVERS:
        name = f"{STACK}-{binary}"
        config = aws_lambda.get_function_configuration(FunctionName=name)
        config.pop("ResponseMetadata")
        url = aws_lambda.get_function_url_config(FunctionName=name)
        url.pop("ResponseMetadata")
        policy = json.loads(aws_lambda.get_policy(FunctionName=name)["Policy"])
        versions = aws_lambda.list_versions_by_function(FunctionName=name)["Versions"]
        state[name] = {"config": config, "url": url, "policy": policy, "versions": len(versions)}
    role = iam.get_role(RoleName=f"{STACK}-receiver")["Role"]
    state["role"] = {
        "role": role,
        "policies": iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"],
        "policy": iam.get_role_policy(RoleName=role["RoleName"], PolicyName="receiver")["PolicyDocument"],
    }
    forward = aws_lambda.get_function_configuration(FunctionName=f"{STACK}-forward")
    forward.pop("ResponseMetadata")
    mappings = aws_lambda.list_event_source_mappings(FunctionName=f"{STACK}-forward")["EventSourceMappings"]
    forward_role = iam.get_role(RoleName=f"{STACK}-forward")["Role"]
    state["forward"] = {
        "config": forward,
        "mappings": [{k: m.get(k) for k in ("EventSourceArn", "StartingPosition", "BatchSize", "FunctionResponseTypes", "BisectBatchOnFunctionError", "MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "MaximumBatchingWindowInSeconds", "DestinationConfig", "FilterCriteria")} for m in mappings],
        "role": forward_role,
        "policy": iam.get_role_policy(RoleName=f"{STACK}-forward", PolicyName="forward")["PolicyDocument"],
    }
    dynamodb, events = client("dynamodb"), client("events")
    table = dynamodb.describe_table(TableName=f"{STACK}-dedup")["Table"]
    state["table"] = {
        "table": table,
        "ttl": dynamodb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"],
        "backups": dynamodb.describe_continuous_backups(TableName=table["TableName"])["ContinuousBackupsDescription"],
    }
    bus = events.describe_event_bus(Name=f"{STACK}-sendblue")
    bus.pop("ResponseMetadata")
    archive = events.describe_archive(ArchiveName=f"{STACK}-sendblue-archive")
    for volatile in ("ResponseMetadata", "EventCount", "SizeBytes"):
        archive.pop(volatile, None)
    state["bus"] = {"bus": bus, "archive": archive}
    state["logs"] = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{STACK}-")["logGroups"]
    return state


class DeployWithCargoLambda(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        assert ENDPOINT, "SENDBLUE_TEST_MOTO_ENDPOINT is not set: run the tests with scripts/test.sh"
        first = run("scripts/deploy-cargo-lambda.sh", "x86_64")
        cls.first_log = first.stderr
        cls.outputs = json.loads(first.stdout)
        cls.after_first = snapshot()
        second = run("scripts/deploy-cargo-lambda.sh", "x86_64")
        cls.second_log = second.stderr
        cls.second_outputs = json.loads(second.stdout)
        cls.after_second = snapshot()

    def output(self, key):
        [value] = [o["OutputValue"] for o in self.outputs if o["OutputKey"] == key]
        return value

    def test_1_every_receiver_is_a_function_behind_a_public_url(self):
        self.assertEqual(len(RECEIVERS), 8)
        self.assertNotIn("reconcile", RECEIVERS)
        for binary in RECEIVERS:
            state = self.after_first[f"{STACK}-{binary}"]
            config = state["config"]
            self.assertEqual((config["Runtime"], config["Handler"], config["Architectures"]), ("provided.al2023", "bootstrap", ["x86_64"]))
            self.assertEqual((config["MemorySize"], config["Timeout"]), (128, 10), "the template's defaults")
            self.assertEqual(config["Role"], self.after_first["role"]["role"]["Arn"])
            self.assertEqual(state["url"]["AuthType"], "NONE", "the secret or token is the proof, checked by the code")
            public = sorted((s["Action"], s.get("FunctionUrlAuthType"), s.get("InvokedViaFunctionUrl")) for s in state["policy"]["Statement"])
            self.assertEqual(public, [("lambda:InvokeFunction", None, True), ("lambda:InvokeFunctionUrl", "NONE", None)])
        self.assertEqual([g["retentionInDays"] for g in self.after_first["logs"]], [30] * 9, "and forward's")

    def test_2_each_function_holds_only_the_proof_it_checks(self):
        common = {
            "DEDUP_TABLE_NAME": f"{STACK}-dedup",
            "EVENT_BUS_NAME": f"{STACK}-sendblue",
            "EVENT_SOURCE": "sendblue",
            "DEDUP_TTL_SECONDS": "86400",
            "MAX_BODY_BYTES": "245760",
            "METRICS_NAMESPACE": f"SendblueWebhooks/{STACK}",
        }
        for binary in RECEIVERS:
            variables = self.after_first[f"{STACK}-{binary}"]["config"]["Environment"]["Variables"]
            proof = {
                "status-callback": {"SENDBLUE_CALLBACK_TOKENS": TOKENS},
                "contact-created": {"SENDBLUE_WEBHOOK_SECRETS": CONTACT_CREATED_SECRETS},
            }.get(binary, {"SENDBLUE_WEBHOOK_SECRETS": SECRETS})
            self.assertEqual(variables, {**common, **proof}, binary)
        self.assertNotIn(SECRETS.split(",")[0], self.first_log + self.second_log, "secrets are never printed")
        self.assertNotIn(TOKENS, self.first_log + self.second_log)
        self.assertNotIn(CONTACT_CREATED_SECRETS, self.first_log + self.second_log)

    def test_3_the_role_has_exactly_the_templates_policy(self):
        template, matches = decode(str(ROOT / "template.yaml"))
        assert not matches, matches
        [templates] = template["Resources"]["ReceiverRole"]["Properties"]["Policies"]
        role = self.after_first["role"]
        self.assertEqual(role["policies"], ["receiver"], "one inline policy, nothing else")

        def actions(statements):
            return {s["Sid"]: sorted([s["Action"]] if isinstance(s["Action"], str) else s["Action"]) for s in statements}

        statements = role["policy"]["Statement"]
        self.assertEqual(actions(statements), actions(templates["PolicyDocument"]["Statement"]))
        by_sid = {s["Sid"]: s for s in statements}
        table, bus = self.after_first["table"]["table"], self.after_first["bus"]["bus"]
        self.assertEqual(by_sid["AcceptEvents"]["Resource"], table["TableArn"])
        self.assertNotIn("ForwardEvents", by_sid, "receivers call no bus")
        receiver_groups = [g for g in self.after_first["logs"] if not g["logGroupName"].endswith("-forward")]
        self.assertEqual(
            sorted(by_sid["OwnLogs"]["Resource"]),
            sorted(f"{g['arn'].removesuffix(':*')}:*" for g in receiver_groups),
        )
        [forward_template] = template["Resources"]["ForwardRole"]["Properties"]["Policies"]
        forward = self.after_first["forward"]
        self.assertEqual(actions(forward["policy"]["Statement"]), actions(forward_template["PolicyDocument"]["Statement"]))
        by_sid = {s["Sid"]: s for s in forward["policy"]["Statement"]}
        self.assertEqual(by_sid["ForwardEvents"]["Resource"], bus["Arn"])
        self.assertEqual(by_sid["Stream"]["Resource"], table["LatestStreamArn"])
        self.assertEqual(by_sid["PendingIndex"]["Resource"], table["TableArn"] + "/index/pending")
        trust = role["role"]["AssumeRolePolicyDocument"]["Statement"]
        self.assertEqual([s["Principal"] for s in trust], [{"Service": "lambda.amazonaws.com"}])
        self.assertEqual(trust[0]["Condition"], {"StringEquals": {"aws:SourceAccount": "123456789012"}})

    def test_4_table_bus_and_archive_are_the_templates(self):
        table = self.after_first["table"]
        template, matches = decode(str(ROOT / "template.yaml"))
        assert not matches, matches
        declared = template["Resources"]["DedupTable"]["Properties"]
        self.assertEqual(table["table"]["KeySchema"], declared["KeySchema"])
        self.assertEqual(
            sorted(table["table"]["AttributeDefinitions"], key=str), sorted(declared["AttributeDefinitions"], key=str))
        [index] = table["table"]["GlobalSecondaryIndexes"]
        [declared_index] = declared["GlobalSecondaryIndexes"]
        self.assertEqual((index["IndexName"], index["KeySchema"], index["Projection"]),
                         (declared_index["IndexName"], declared_index["KeySchema"], declared_index["Projection"]))
        self.assertEqual(table["table"]["StreamSpecification"], {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
        self.assertEqual(table["table"]["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST")
        self.assertTrue(table["table"]["DeletionProtectionEnabled"])
        self.assertEqual((table["ttl"]["TimeToLiveStatus"], table["ttl"]["AttributeName"]), ("ENABLED", "expires_at"))
        self.assertEqual(table["backups"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"], "ENABLED")
        archive = self.after_first["bus"]["archive"]
        self.assertEqual((archive["EventSourceArn"], archive["RetentionDays"]), (self.after_first["bus"]["bus"]["Arn"], 30))

    def test_4b_forward_reads_the_stream_as_the_template_maps_it_and_is_swept(self):
        forward = self.after_first["forward"]
        self.assertEqual(forward["config"]["Role"], forward["role"]["Arn"])
        self.assertEqual(forward["config"]["Timeout"], 60)
        variables = forward["config"]["Environment"]["Variables"]
        self.assertEqual(variables["SWEEP_MIN_AGE_SECONDS"], "300")
        self.assertNotIn("SENDBLUE_WEBHOOK_SECRETS", variables, "it checks no webhook")
        [mapping] = forward["mappings"]
        self.assertEqual(mapping["EventSourceArn"], self.after_first["table"]["table"]["LatestStreamArn"])
        # Every setting of the template's stream event, the same here.
        template, matches = decode(str(ROOT / "template.yaml"))
        assert not matches, matches
        declared = dict(template["Resources"]["ForwardFunction"]["Properties"]["Events"]["Stream"]["Properties"])
        declared.pop("Stream")
        failure_queue = declared.pop("DestinationConfig")["OnFailure"]["Destination"]
        self.assertEqual(failure_queue, {"Fn::GetAtt": ["ForwardFailureQueue", "Arn"]})
        self.assertEqual({k: mapping[k] for k in declared}, declared)
        self.assertTrue(mapping["DestinationConfig"]["OnFailure"]["Destination"].endswith(f":{STACK}-forward-failures"))
        rules = client("events").list_rule_names_by_target(TargetArn=forward["config"]["FunctionArn"])["RuleNames"]
        self.assertEqual(rules, [f"{STACK}-forward-sweep"])

    def test_5_the_outputs_are_what_register_reads(self):
        keys = [o["OutputKey"] for o in self.outputs]
        for key in ("ReceiveUrl", "OutboundUrl", "TypingIndicatorUrl", "CallLogUrl", "LineBlockedUrl", "LineAssignedUrl", "ContactCreatedUrl", "StatusCallbackUrlBase", "EventBusName", "DedupTableName", "EventSource", "DedupTtlSeconds"):
            self.assertIn(key, keys)
        self.assertEqual((self.output("EventSource"), self.output("DedupTtlSeconds")), ("sendblue", "86400"), "what reconcile writes by")
        self.assertEqual(self.output("ReceiveUrl"), self.after_first[f"{STACK}-receive"]["url"]["FunctionUrl"].rstrip("/") + "/")
        callback = self.after_first[f"{STACK}-status-callback"]["url"]["FunctionUrl"].rstrip("/")
        self.assertEqual(self.output("StatusCallbackUrlBase"), f"{callback}/status-callback/")
        outputs = ROOT / ".tools" / f"{STACK}-outputs.json"
        outputs.write_text(json.dumps(self.outputs))
        cli = subprocess.run(
            [ROOT / "target" / "debug" / "sendblue-webhooks", "callback-url", "--stack-outputs", outputs],
            env=environment(SENDBLUE_CALLBACK_TOKEN=TOKENS), capture_output=True, text=True,
        )
        self.assertEqual(cli.stdout.strip(), f"{callback}/status-callback/{TOKENS}", cli.stderr)

    def test_6_a_second_run_changes_nothing(self):
        self.assertEqual(self.second_outputs, self.outputs)
        self.assertEqual(self.after_second, self.after_first)
        for binary in RECEIVERS + ["forward"]:
            self.assertIn(f"{STACK}-{binary}: unchanged", self.second_log)
        for verb in ("creating", "deploying", "writing", "turning on"):
            self.assertNotIn(f"] {verb}", self.second_log)
            self.assertIn(f"] {verb}", self.first_log, "the first run did make it")

    def test_9_destroy_removes_everything_but_the_table_unless_asked(self):
        run("scripts/destroy-cargo-lambda.sh")
        aws_lambda = client("lambda")
        left = [f["FunctionName"] for f in aws_lambda.list_functions()["Functions"] if f["FunctionName"].startswith(f"{STACK}-")]
        self.assertEqual(left, [])
        self.assertEqual(client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{STACK}-")["logGroups"], [])
        roles = [r["RoleName"] for r in client("iam").list_roles()["Roles"]]
        self.assertNotIn(f"{STACK}-receiver", roles)
        self.assertNotIn(f"{STACK}-forward", roles)
        self.assertEqual(aws_lambda.list_event_source_mappings(FunctionName=f"{STACK}-forward")["EventSourceMappings"], [])
        self.assertFalse([u for u in client("sqs").list_queues().get("QueueUrls", []) if u.endswith(f"{STACK}-forward-failures")])
        events = client("events")
        self.assertNotIn(f"{STACK}-sendblue", [b["Name"] for b in events.list_event_buses()["EventBuses"]])
        self.assertNotIn(f"{STACK}-sendblue-archive", [a["ArchiveName"] for a in events.list_archives()["Archives"]])
        dynamodb = client("dynamodb")
        self.assertIn(f"{STACK}-dedup", dynamodb.list_tables()["TableNames"], "the dedup keys are kept")
        again = run("scripts/destroy-cargo-lambda.sh", "--delete-table")
        self.assertIn("already gone", again.stderr, "a second run skips what is gone")
        self.assertNotIn(f"{STACK}-dedup", dynamodb.list_tables()["TableNames"])


if __name__ == "__main__":
    unittest.main()

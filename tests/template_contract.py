"""template.yaml keeps the receiver's contract: every binary has a function and a route, every
function gets the variables the code reads, the table matches what the code writes, and the IAM
actions are exactly the calls the code makes. Facts about the code are read from the Rust
sources, so a change on either side that breaks the other fails here.

Run by scripts/test.sh with the SAM virtualenv's Python (cfn-lint's decoder reads the `!Ref`
short forms): python -m unittest tests/template_contract.py
"""

import json
import pathlib
import re
import tomllib
import unittest

from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "shared" / "src"


def rust_consts(path):
    """`pub const NAME: &str = "value";` in a Rust file, as a dict."""
    return dict(re.findall(r'pub const (\w+): &str = "([^"]*)";', (SRC / path).read_text()))


def binaries():
    """The [[bin]] name of every webhook function crate (all but reconcile and forward, which no
    webhook calls)."""
    names = []
    for manifest in sorted((ROOT / "functions").glob("*/Cargo.toml")):
        names += [b["name"] for b in tomllib.loads(manifest.read_text())["bin"]]
    return [name for name in names if name not in ("reconcile", "forward")]


def sdk_calls(path):
    """The SDK operations a Rust file calls, as IAM actions (`.put_item()` -> PutItem)."""
    calls = re.findall(r"\.\s*(put_item|update_item|delete_item|get_item|batch_get_item|query|put_events)\(\)", (SRC / path).read_text())
    return {"".join(word.title() for word in call.split("_")) for call in calls}


def ref(name):
    return {"Ref": name}


def get_att(resource, attribute):
    return {"Fn::GetAtt": [resource, attribute]}


class TemplateContract(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        template, matches = decode(str(ROOT / "template.yaml"))
        assert not matches, matches
        cls.template = template
        cls.resources = template["Resources"]
        cls.functions = {
            name: r for name, r in cls.resources.items() if r["Type"] == "AWS::Serverless::Function"
        }
        cls.globals = template["Globals"]["Function"]

    def function_of(self, binary):
        found = [
            (name, f)
            for name, f in self.functions.items()
            if f["Metadata"]["BuildProperties"]["Binary"] == binary
        ]
        self.assertEqual(len(found), 1, f"one function builds {binary}")
        return found[0]

    def route_of(self, binary):
        """The path API Gateway serves `binary` at: the status callback's ends in its token."""
        token = rust_consts("verify.rs")["TOKEN_PATH_PARAMETER"]
        return f"/sendblue/{binary}" + (f"/{{{token}}}" if binary == "status-callback" else "")

    def resources_of(self, type_, condition):
        """Every resource of `type_`, each checked to exist only under `condition`."""
        found = {name: r for name, r in self.resources.items() if r["Type"] == type_}
        for name, resource in found.items():
            self.assertEqual(resource.get("Condition"), condition, name)
        return found.values()

    def test_every_binary_has_one_function_and_one_post_route(self):
        self.assertEqual(len(binaries()), 8)
        self.assertEqual(len(self.functions), len(binaries()) + 2, "no function without a binary")
        _, reconcile = self.function_of("reconcile")
        self.assertEqual(list(reconcile["Properties"]["Events"]), ["Schedule"], "reconcile has no route")
        integrations = self.resources_of("AWS::ApiGatewayV2::Integration", "UsesHttpApi")
        routes = self.resources_of("AWS::ApiGatewayV2::Route", "UsesHttpApi")
        self.assertEqual(len(routes), len(binaries()))
        for binary in binaries():
            name, function = self.function_of(binary)
            self.assertEqual(function["Metadata"]["BuildMethod"], "rust-cargolambda")
            self.assertNotIn("Events", function["Properties"], "the frontend is chosen by Frontend, not by events")
            self.assertEqual(function["Properties"]["Role"], get_att("ReceiverRole", "Arn"))
            [integration] = [i for i, r in self.resources.items() if r in integrations and r["Properties"]["IntegrationUri"] == get_att(name, "Arn")]
            self.assertEqual(self.resources[integration]["Properties"]["PayloadFormatVersion"], "2.0")
            [route] = [r["Properties"] for r in routes if r["Properties"]["Target"] == {"Fn::Sub": f"integrations/${{{integration}}}"}]
            self.assertEqual(route["RouteKey"], f"POST {self.route_of(binary)}")
            source = f"${{HttpApi}}/*/POST{self.route_of(binary).replace('{token}', '*')}"
            [permission] = [p for p in self.invoke_permissions(name) if p.get("Principal") == "apigateway.amazonaws.com"]
            self.assertTrue(permission["SourceArn"]["Fn::Sub"].endswith(source), permission)

    def invoke_permissions(self, function):
        return [r["Properties"] for r in self.resources.values() if r["Type"] == "AWS::Lambda::Permission" and r["Properties"]["FunctionName"] == ref(function)]

    def test_behind_function_urls_every_receiver_has_a_public_url_and_nothing_else_does(self):
        urls = self.resources_of("AWS::Lambda::Url", "UsesFunctionUrls")
        self.assertEqual(sorted(u["Properties"]["TargetFunctionArn"]["Ref"] for u in urls), sorted(self.function_of(b)[0] for b in binaries()))
        for binary in binaries():
            name, _ = self.function_of(binary)
            [url] = [u for u in urls if u["Properties"]["TargetFunctionArn"] == ref(name)]
            self.assertEqual(url["Properties"]["AuthType"], "NONE", "the secret or token is the proof, checked by the code")
            public = sorted(
                (p["Action"], p.get("FunctionUrlAuthType"), p.get("InvokedViaFunctionUrl"))
                for p in self.invoke_permissions(name) if p["Principal"] == "*"
            )
            self.assertEqual(public, [("lambda:InvokeFunction", None, True), ("lambda:InvokeFunctionUrl", "NONE", None)])
        _, reconcile = self.function_of("reconcile")
        self.assertEqual(self.invoke_permissions("ReconcileFunction"), [], "reconcile is never public")

    def test_url_outputs_have_the_same_names_for_both_frontends(self):
        """`register` reads one output per type whichever frontend was deployed."""
        outputs = self.template["Outputs"]
        for binary in binaries():
            name, _ = self.function_of(binary)
            key = name.removesuffix("Function") + ("UrlBase" if binary == "status-callback" else "Url")
            condition, behind_api, behind_url = outputs[key]["Value"]["Fn::If"]
            self.assertEqual(condition, "UsesHttpApi", key)
            self.assertTrue(behind_api["Fn::Sub"].endswith(self.route_of(binary).removesuffix("{token}")), key)
            url = f"{name}Url.FunctionUrl"
            if binary == "status-callback":
                self.assertEqual(behind_url, {"Fn::Sub": f"${{{url}}}status-callback/"}, "the token's segment, as verify.rs reads it")
            else:
                self.assertEqual(behind_url, get_att(f"{name}Url", "FunctionUrl"), key)
        self.assertEqual(outputs["ApiBaseUrl"]["Condition"], "UsesHttpApi")
        self.assertEqual(self.template["Parameters"]["Frontend"]["AllowedValues"], ["HttpApi", "FunctionUrl"])
        self.assertEqual(self.template["Parameters"]["Frontend"]["Default"], "HttpApi")

    def test_outputs_name_where_reconcile_from_a_laptop_writes(self):
        """`sendblue-webhooks reconcile` takes the table, bus, source and dedup window from them."""
        outputs = self.template["Outputs"]
        self.assertEqual(outputs["DedupTableName"]["Value"], {"Ref": "DedupTable"})
        self.assertEqual(outputs["EventBusName"]["Value"], {"Ref": "EventBus"})
        self.assertEqual(outputs["EventSource"]["Value"], {"Ref": "EventSource"})
        self.assertEqual(outputs["DedupTtlSeconds"]["Value"], {"Ref": "DedupTtlSeconds"})

    def test_outputs_name_every_alarm_and_the_metrics_namespace_for_doctor(self):
        """`sendblue-webhooks doctor` reads the alarms' states and reconcile's runs by them."""
        outputs, resources = self.template["Outputs"], self.template["Resources"]
        alarms = {name for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
        separator, listed = outputs["AlarmNames"]["Value"]["Fn::Join"]
        self.assertEqual(separator, ",")
        named = set()
        for entry in listed:
            if "Fn::If" in entry:
                condition, chosen, otherwise = entry["Fn::If"]
                # Each alarm listed only where the stack makes it.
                self.assertEqual(resources[chosen["Ref"]]["Condition"], condition)
                self.assertEqual(self.template["Conditions"][resources[otherwise["Ref"]]["Condition"]], {"Fn::Equals": [ref("Frontend"), "FunctionUrl"]})
                self.assertEqual(self.template["Conditions"][condition], {"Fn::Equals": [ref("Frontend"), "HttpApi"]})
                named.update([chosen["Ref"], otherwise["Ref"]])
            else:
                self.assertNotIn("Condition", resources[entry["Ref"]], entry)
                named.add(entry["Ref"])
        self.assertEqual(named, alarms, "every alarm, and nothing else")
        namespace = self.globals["Environment"]["Variables"]["METRICS_NAMESPACE"]
        self.assertEqual(outputs["MetricsNamespace"]["Value"], namespace)

    def test_runtime_is_the_custom_al2023_runtime_with_a_short_timeout(self):
        self.assertEqual(self.globals["Runtime"], "provided.al2023")
        self.assertEqual(self.globals["Handler"], "bootstrap")
        self.assertEqual(self.globals["Architectures"], ["arm64"], "decided here, for build and deploy alike")
        self.assertNotIn("Architecture", self.template["Parameters"], "a parameter lets the guided deploy differ from the build")
        timeout = self.template["Parameters"]["FunctionTimeoutSeconds"]
        self.assertLess(timeout["MaxValue"], 45, "well under Sendblue's 45 s")

    def test_functions_get_every_variable_the_code_reads(self):
        read_by_code = {v for k, v in rust_consts("config.rs").items() if k == v}
        self.assertIn("DEDUP_TABLE_NAME", read_by_code)
        guarded = {"SENDBLUE_WEBHOOK_SECRETS": ref("SendblueWebhookSecrets"), "SENDBLUE_CALLBACK_TOKENS": ref("StatusCallbackTokens")}
        shared = self.globals["Environment"]["Variables"]
        self.assertEqual(set(shared), read_by_code - {"RECEIVER_MODE"} - set(guarded))
        self.assertEqual(shared["DEDUP_TABLE_NAME"], ref("DedupTable"))
        self.assertEqual(shared["EVENT_BUS_NAME"], ref("EventBus"))
        for binary in binaries():
            name, function = self.function_of(binary)
            own = function["Properties"]["Environment"]["Variables"]
            # Each function holds only the proof it checks (config.rs: secrets_variable).
            variable = "SENDBLUE_CALLBACK_TOKENS" if binary == "status-callback" else "SENDBLUE_WEBHOOK_SECRETS"
            proof = guarded[variable]
            if binary == "contact-created":
                # Its own list, so that the account's globalSecret never opens the others.
                proof = {"Fn::If": ["HasContactCreatedSecrets", ref("ContactCreatedSecrets"), ref("SendblueWebhookSecrets")]}
            self.assertEqual(own, {variable: proof}, name)
            self.assertNotIn("RECEIVER_MODE", own, "a deployed function never runs in local mode")

    def test_secrets_and_tokens_are_no_echo_parameters_without_default(self):
        for name in ["SendblueWebhookSecrets", "StatusCallbackTokens"]:
            secrets = self.template["Parameters"][name]
            self.assertTrue(secrets["NoEcho"], name)
            self.assertNotIn("Default", secrets, name)
        contact_created = self.template["Parameters"]["ContactCreatedSecrets"]
        self.assertTrue(contact_created["NoEcho"])
        self.assertEqual(contact_created["Default"], "", "empty: the same secrets as the others")
        self.assertEqual(self.template["Conditions"]["HasContactCreatedSecrets"], {"Fn::Not": [{"Fn::Equals": [ref("ContactCreatedSecrets"), ""]}]})
        minimum = re.search(r"MIN_CALLBACK_TOKEN_CHARS: usize = (\d+);", (SRC / "config.rs").read_text()).group(1)
        self.assertIn("{%s,}" % minimum, self.template["Parameters"]["StatusCallbackTokens"]["AllowedPattern"])

    def test_body_limit_parameter_matches_the_code_ceiling(self):
        match = re.search(r"MAX_BODY_BYTES_CEILING: usize = ([\d\s*]+);", (SRC / "config.rs").read_text())
        ceiling = eval(match.group(1))  # a product of literals, e.g. `240 * 1024`
        parameter = self.template["Parameters"]["MaxBodyBytes"]
        self.assertEqual((parameter["Default"], parameter["MaxValue"]), (ceiling, ceiling))

    def test_table_key_and_ttl_match_what_the_store_writes(self):
        attributes = rust_consts("dedup/dynamodb.rs")
        table = self.resources["DedupTable"]["Properties"]
        self.assertEqual(table["KeySchema"], [{"AttributeName": attributes["PK"], "KeyType": "HASH"}])
        self.assertEqual(table["AttributeDefinitions"], [
            {"AttributeName": attributes["PK"], "AttributeType": "S"},
            {"AttributeName": attributes["PENDING_TYPE"], "AttributeType": "S"},
            {"AttributeName": attributes["RECEIVED_AT_MS"], "AttributeType": "N"},
        ])
        [index] = table["GlobalSecondaryIndexes"]
        self.assertEqual(index["IndexName"], attributes["PENDING_INDEX"])
        self.assertEqual(index["KeySchema"], [
            {"AttributeName": attributes["PENDING_TYPE"], "KeyType": "HASH"},
            {"AttributeName": attributes["RECEIVED_AT_MS"], "KeyType": "RANGE"},
        ])
        self.assertEqual(index["Projection"], {"ProjectionType": "KEYS_ONLY"}, "the forwarder reads items whole")
        self.assertEqual(table["StreamSpecification"], {"StreamViewType": "NEW_IMAGE"})
        self.assertEqual(table["TimeToLiveSpecification"], {"AttributeName": attributes["EXPIRES_AT"], "Enabled": True})
        self.assertEqual(table["BillingMode"], "PAY_PER_REQUEST")
        self.assertTrue(table["SSESpecification"]["SSEEnabled"])
        self.assertEqual(self.resources["DedupTable"]["DeletionPolicy"], "Retain")

    def statements(self, role):
        return self.resources[role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]

    def test_iam_actions_are_exactly_the_calls_the_code_makes(self):
        statements = self.statements("ReceiverRole")
        by_sid = {s["Sid"]: s for s in statements}
        dynamodb = {a.removeprefix("dynamodb:") for a in by_sid["AcceptEvents"]["Action"]}
        self.assertEqual(dynamodb, {"PutItem", "GetItem"}, "the accept and its read-back: no bus, no update")
        self.assertEqual(by_sid["AcceptEvents"]["Resource"], get_att("DedupTable", "Arn"))
        log_groups = {r["Fn::GetAtt"][0] for r in by_sid["OwnLogs"]["Resource"]}
        own = {self.function_of(b)[1]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for b in binaries()}
        self.assertEqual(log_groups, own)
        self.assertEqual([s["Sid"] for s in statements], ["AcceptEvents", "OwnLogs"])
        forward = {s["Sid"]: s for s in self.statements("ForwardRole")}
        self.assertEqual({a.removeprefix("dynamodb:") for a in forward["ReadAndMark"]["Action"]}, {"BatchGetItem", "UpdateItem"})
        self.assertEqual(forward["PendingIndex"]["Action"], "dynamodb:Query")
        self.assertEqual(forward["PendingIndex"]["Resource"], {"Fn::Sub": "${DedupTable.Arn}/index/pending"})
        self.assertEqual(forward["Stream"]["Resource"], get_att("DedupTable", "StreamArn"))
        self.assertEqual({forward["ForwardEvents"]["Action"].removeprefix("events:")}, sdk_calls("bus/eventbridge.rs"))
        self.assertEqual(forward["ForwardEvents"]["Resource"], get_att("EventBus", "Arn"))
        self.assertEqual(forward["StreamFailures"]["Resource"], get_att("ForwardFailureQueue", "Arn"))
        # Between them, the three roles allow exactly the table calls the store makes.
        reconcile = {s["Sid"]: s for s in self.statements("ReconcileRole")}
        granted = set(by_sid["AcceptEvents"]["Action"]) | set(reconcile["AcceptEvents"]["Action"])
        granted |= set(forward["ReadAndMark"]["Action"]) | {forward["PendingIndex"]["Action"]}
        self.assertEqual({a.removeprefix("dynamodb:") for a in granted}, sdk_calls("dedup/dynamodb.rs"))
        for role in ["ReceiverRole", "ReconcileRole", "ForwardRole"]:
            for statement in self.statements(role):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                self.assertFalse(any("*" in a for a in actions), statement)
                self.assertNotEqual(statement["Resource"], "*", statement)
            if role != "ForwardRole":
                self.assertNotIn("events:PutEvents", json.dumps(self.statements(role)), f"{role} calls no bus")

    def test_forward_reads_the_stream_as_the_design_says_and_sweeps_on_a_schedule(self):
        _, function = self.function_of("forward")
        props = function["Properties"]
        self.assertEqual(props["Role"], get_att("ForwardRole", "Arn"))
        self.assertEqual(props["Environment"]["Variables"], {"SWEEP_MIN_AGE_SECONDS": ref("SweepMinAgeSeconds")})
        stream = props["Events"]["Stream"]
        self.assertEqual(stream["Type"], "DynamoDB")
        mapping = stream["Properties"]
        self.assertEqual(mapping["Stream"], get_att("DedupTable", "StreamArn"))
        self.assertEqual(mapping["StartingPosition"], "TRIM_HORIZON")
        self.assertEqual(mapping["FunctionResponseTypes"], ["ReportBatchItemFailures"])
        self.assertTrue(mapping["BisectBatchOnFunctionError"])
        self.assertLessEqual(mapping["BatchSize"], 10, "a batch is one PutEvents")
        self.assertGreater(mapping["MaximumRetryAttempts"], 0)
        self.assertLessEqual(mapping["MaximumRecordAgeInSeconds"], 24 * 3600, "within the stream's retention")
        self.assertEqual(mapping["DestinationConfig"]["OnFailure"]["Destination"], get_att("ForwardFailureQueue", "Arn"))
        self.assertEqual(json.loads(mapping["FilterCriteria"]["Filters"][0]["Pattern"]), {"dynamodb": {"NewImage": {"status": {"S": ["PENDING"]}}}})
        sweep = props["Events"]["Sweep"]
        self.assertEqual(sweep["Type"], "ScheduleV2")
        self.assertEqual(self.invoke_permissions("ForwardFunction"), [], "forward is never public")
        # The stream takes events pending for less than half the sweep's age, the sweep the rest:
        # a stream forward ends (at its timeout at the latest) before the sweep may read its event.
        least = self.template["Parameters"]["SweepMinAgeSeconds"]["MinValue"]
        self.assertGreaterEqual(least / 2, props["Timeout"], "half the sweep's age outlasts forward")

    def test_reconcile_runs_on_a_schedule_with_its_own_least_privilege_role(self):
        _, function = self.function_of("reconcile")
        props = function["Properties"]
        schedule = props["Events"]["Schedule"]
        self.assertEqual(schedule["Type"], "ScheduleV2")
        self.assertEqual(schedule["Properties"]["State"], ref("ReconcileSchedule"))
        self.assertEqual(self.template["Parameters"]["ReconcileRateMinutes"]["Default"], 5)
        self.assertEqual(props["Role"], get_att("ReconcileRole", "Arn"))
        variables = props["Environment"]["Variables"]
        self.assertEqual(set(variables), {
            "SENDBLUE_API_CREDENTIALS_SECRET", "RECONCILE_LOOKBACK_SECONDS", "RECONCILE_SETTLE_SECONDS",
            "RECONCILE_API_SHARE_PERCENT", "SENDBLUE_NUMBERS"})
        self.assertEqual(variables["SENDBLUE_NUMBERS"], ref("SendblueNumbers"))
        lines = self.template["Parameters"]["SendblueNumbers"]
        self.assertEqual(lines["Default"], "", "every line unless told")
        pattern = re.compile(lines["AllowedPattern"])
        for good in ["", "+15551234567", "+15551234567,+447700900123"]:
            self.assertTrue(pattern.fullmatch(good), good)
        for bad in ["15551234567", "+1555 1234567", "+15551234567,", "+05551234567"]:
            self.assertFalse(pattern.fullmatch(bad), bad)
        output = self.template["Outputs"]["SendblueNumbers"]
        self.assertEqual((output["Value"], output["Condition"]), (ref("SendblueNumbers"), "LimitsLines"))
        self.assertEqual(variables["RECONCILE_SETTLE_SECONDS"], ref("ReconcileSettleSeconds"))
        self.assertEqual(variables["RECONCILE_API_SHARE_PERCENT"], ref("ReconcileApiSharePercent"))
        self.assertEqual(self.template["Parameters"]["ReconcileSettleSeconds"]["Default"], 120)
        self.assertEqual(self.template["Parameters"]["ReconcileApiSharePercent"]["Default"], 50)
        self.assertNotIn("SENDBLUE_WEBHOOK_SECRETS", variables, "it checks no webhook")
        statements = self.resources["ReconcileRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        by_sid = {s["Sid"]: s for s in statements}
        dynamodb = {a.removeprefix("dynamodb:") for a in by_sid["AcceptEvents"]["Action"]}
        self.assertEqual(dynamodb, {"PutItem", "GetItem", "UpdateItem", "DeleteItem"},
                         "accepts, its watermark, and its lease (given back with DeleteItem)")
        self.assertEqual(by_sid["ApiKeys"]["Action"], "secretsmanager:GetSecretValue")
        self.assertEqual(
            by_sid["ApiKeys"]["Resource"],
            {"Fn::If": ["CreatesApiSecret", ref("SendblueApiSecret"), ref("SendblueApiCredentialsSecretArn")]},
            "the one secret, nothing else")
        receivers = self.resources["ReceiverRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        self.assertFalse([s for s in receivers if "secretsmanager" in json.dumps(s)], "receivers read no secret")
        for name in ["SendblueApiKeyId", "SendblueApiSecretKey"]:
            self.assertTrue(self.template["Parameters"][name]["NoEcho"], name)
        # What a run re-reads must still be known: the window's floor covers the default look-back.
        window = self.template["Parameters"]["DedupTtlSeconds"]
        self.assertGreaterEqual(window["Default"], self.template["Parameters"]["ReconcileLookbackSeconds"]["Default"] + 120)

    def test_reconcile_cannot_fail_silently(self):
        """Every run reports; a run that cannot start, a run that reports nothing, failing runs
        at any schedule, an API that breaks its order and a record set aside each raise an alarm."""
        errors = self.resources["FunctionErrorsAlarm"]["Properties"]["Metrics"]
        functions = [m["MetricStat"]["Metric"]["Dimensions"][0]["Value"] for m in errors if "MetricStat" in m]
        self.assertIn(ref("ReconcileFunction"), functions, "a reconcile that cannot start")
        lag = self.resources["ReconcileLagAlarm"]["Properties"]
        self.assertEqual(lag["TreatMissingData"], {"Fn::If": ["ReconcileScheduled", "breaching", "notBreaching"]},
                         "no report while scheduled is the worst case")
        self.assertEqual(self.template["Conditions"]["ReconcileScheduled"],
                         {"Fn::Equals": [ref("ReconcileSchedule"), "ENABLED"]})
        slowest_rate_s = self.template["Parameters"]["ReconcileRateMinutes"]["MaxValue"] * 60
        for name in ["ReconcileLagAlarm", "ReconcileApiErrorsAlarm", "ReconcileFailedAlarm",
                     "ReconcileOrderAlarm", "ReconcileSetAsideAlarm"]:
            props = self.resources[name]["Properties"]
            # Each period holds a run whatever the schedule, so the alarm can fire at any rate.
            self.assertGreaterEqual(props["Period"], slowest_rate_s, name)
            if name != "ReconcileLagAlarm":
                self.assertEqual((props["Threshold"], props["ComparisonOperator"]),
                                 (1, "GreaterThanOrEqualToThreshold"), name)
        self.assertEqual(self.resources["ReconcileFailedAlarm"]["Properties"]["MetricName"], "RunFailures")
        self.assertEqual(self.resources["ReconcileOrderAlarm"]["Properties"]["MetricName"], "OrderErrors")
        self.assertEqual(self.resources["ReconcileSetAsideAlarm"]["Properties"]["MetricName"], "SetAside")

    def emitted(self, source="metrics.rs"):
        """What a function emits as EMF (the receivers' metrics.rs, or reconcile's): metric
        names, dimension sets, outcome values."""
        metrics = (SRC / source).read_text()
        names = set(re.findall(r'\{"Name": "(\w+)", "Unit"', metrics))
        dimension_sets = re.search(r'"Dimensions": (\[\[.*?\]\])', metrics).group(1)
        dimensions = {frozenset(d) for d in eval(dimension_sets)}
        outcomes = set(re.findall(r'=> "([a-z_]+)",', (SRC / "outcome.rs").read_text()))
        return names, dimensions, outcomes

    def our_metric_stats(self):
        """Every (alarm, metric name, dimensions) an alarm reads from our namespace."""
        namespace = self.globals["Environment"]["Variables"]["METRICS_NAMESPACE"]
        found = []
        for name, resource in self.resources.items():
            if resource["Type"] != "AWS::CloudWatch::Alarm":
                continue
            props = resource["Properties"]
            stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
            if "MetricName" in props:
                stats.append(props)
            for metric in stats:
                if metric["Namespace"] == namespace:
                    dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
                    found.append((name, metric["MetricName"], dimensions))
        return found

    def test_alarms_read_metrics_the_functions_really_emit(self):
        names, dimension_sets, outcomes = self.emitted()
        self.assertEqual(names, {"Requests", "Duration"})
        self.assertIn("accepted", outcomes)
        forward_names, forward_dimensions, _ = self.emitted("forward/metrics.rs")
        self.assertIn("OldestPendingAgeSeconds", forward_names)
        reconcile_names, reconcile_dimensions, _ = self.emitted("reconcile/function.rs")
        self.assertEqual(reconcile_names, {
            "Runs", "RunFailures", "ApiErrors", "OrderErrors", "Skipped", "Recovered", "Records", "SetAside",
            "UncoveredSeconds", "LagSeconds"})
        watched = self.our_metric_stats()
        self.assertGreaterEqual(len(watched), 9)
        for alarm, metric, dimensions in watched:
            if metric in reconcile_names:
                self.assertIn(frozenset(dimensions), reconcile_dimensions, alarm)
                self.assertEqual(dimensions, {"Function": "reconcile"}, alarm)
                continue
            if metric in forward_names:
                self.assertIn(frozenset(dimensions), forward_dimensions, alarm)
                self.assertIn(dimensions["Trigger"], {"stream", "sweep"}, alarm)
                continue
            self.assertIn(metric, names, alarm)
            self.assertIn(frozenset(dimensions), dimension_sets, alarm)
            if "Outcome" in dimensions:
                self.assertIn(dimensions["Outcome"], outcomes, alarm)

    def test_every_refusal_and_every_event_at_risk_is_alarmed_and_charted(self):
        by_alarm = {}
        for alarm, _, dimensions in self.our_metric_stats():
            by_alarm.setdefault(alarm, set()).add(dimensions.get("Outcome"))
        # forward's counts of events late, skipped or maybe sent twice, from either trigger.
        watched = {(metric, d.get("Trigger")) for _, metric, d in self.our_metric_stats()}
        for metric in ["Failures", "Malformed", "MarkFailures", "MarkRaces"]:
            for trigger in ["stream", "sweep"]:
                self.assertIn((metric, trigger), watched, f"{metric} of the {trigger} alarmed")
        # 401, 400 and 413 lose the delivery for good (Sendblue does not retry a 4xx).
        self.assertEqual(by_alarm["RefusedDeliveriesAlarm"], {"unauthorized", "bad_body", "too_large"})
        self.assertEqual(by_alarm["MarkFailedAlarm"], {None})
        self.assertEqual(by_alarm["ForwardFailedAlarm"], {None})
        self.assertEqual(by_alarm["ForwardMalformedAlarm"], {None})
        self.assertEqual(by_alarm["OldestPendingAlarm"], {None})
        self.assertEqual(by_alarm["StoreFailedAlarm"], {"store_failed"})
        dashboard = json.dumps(self.resources["Dashboard"]["Properties"]["DashboardBody"])
        _, _, outcomes = self.emitted()
        for outcome in outcomes - {"duplicate_content_differs"}:
            self.assertIn(f'\\"{outcome}\\"', dashboard, f"{outcome} on the dashboard")
        for alarm in by_alarm:
            self.assertIn(f"${{{alarm}.Arn}}", dashboard, f"{alarm} on the dashboard")

    def test_load_is_shed_as_a_5xx_never_as_a_429(self):
        # Stage or route throttling answers 429, which Sendblue never retries.
        [stage] = self.resources_of("AWS::ApiGatewayV2::Stage", "UsesHttpApi")
        self.assertNotIn("DefaultRouteSettings", stage["Properties"])
        self.assertNotIn("RouteSettings", stage["Properties"])
        self.assertFalse([p for p in self.template["Parameters"] if p.startswith("Throttling")])
        # A function over its concurrency is throttled, which the HTTP API answers with a 5xx.
        self.assertEqual(
            self.globals["ReservedConcurrentExecutions"],
            {"Fn::If": ["HasReservedConcurrency", ref("ReservedConcurrency"), ref("AWS::NoValue")]},
        )
        self.assertEqual(self.template["Parameters"]["ReservedConcurrency"]["Default"], 0, "unreserved by default")
        # Behind Function URLs a throttle reaches Sendblue as Lambda's own 429: no cap allowed there.
        rule = self.template["Rules"]["FunctionUrlsAreNeverCapped"]
        self.assertEqual(rule["RuleCondition"], {"Fn::Equals": [ref("Frontend"), "FunctionUrl"]})
        self.assertEqual([a["Assert"] for a in rule["Assertions"]], [{"Fn::Equals": [ref("ReservedConcurrency"), "0"]}])

    def test_the_dedup_window_outlasts_any_lease(self):
        window = self.template["Parameters"]["DedupTtlSeconds"]
        timeout = self.template["Parameters"]["FunctionTimeoutSeconds"]
        self.assertGreater(window["MinValue"], timeout["MaxValue"])
        self.assertGreaterEqual(window["MinValue"], 3600, "outlasts Sendblue's three retries")

    def test_a_reconcile_switched_on_without_api_keys_is_refused(self):
        rule = self.template["Rules"]["ReconcileHasApiKeys"]
        self.assertEqual(rule["RuleCondition"], {"Fn::Equals": [ref("ReconcileSchedule"), "ENABLED"]})
        named = json.dumps(rule["Assertions"])
        for parameter in ["SendblueApiCredentialsSecretArn", "SendblueApiKeyId", "SendblueApiSecretKey"]:
            self.assertIn(json.dumps(ref(parameter)), named)


class DocsContract(unittest.TestCase):
    """The operator's docs name every alarm and every parameter of the template, and nothing
    else: a new alarm or parameter without its row fails here."""

    @classmethod
    def setUpClass(cls):
        template, matches = decode(str(ROOT / "template.yaml"))
        assert not matches, matches
        cls.alarms = {
            name.removesuffix("Alarm")
            for name, resource in template["Resources"].items()
            if resource["Type"] == "AWS::CloudWatch::Alarm"
        }
        cls.parameters = set(template["Parameters"])

    @staticmethod
    def table_rows(path, heading):
        """The cells of each row of the first table under `heading`, header rows left out."""
        text = (ROOT / path).read_text()
        section = text[text.index(heading):]
        table = re.search(r"\n(\|.*\|\n)+", section).group(0)
        return [[cell.strip() for cell in line.strip("|").split("|")] for line in table.strip().splitlines()[2:]]

    @staticmethod
    def names_in(cell):
        return re.findall(r"`(\w+)`", cell)

    def test_the_runbook_has_one_row_per_alarm(self):
        rows = self.table_rows("docs/operate.md", "## One row per alarm")
        named = [self.names_in(cells[0])[0] for cells in rows]
        self.assertEqual(len(named), len(set(named)), "one row each")
        self.assertEqual(set(named), self.alarms)
        for cells in rows:
            self.assertEqual(len(cells), 5, cells)
            self.assertTrue(all(cells), f"every column filled: {cells}")

    def test_the_deploy_guide_has_a_row_for_every_parameter(self):
        rows = self.table_rows("docs/deploy.md", "**Parameters**")
        named = [name for cells in rows for name in self.names_in(cells[0])]
        self.assertEqual(len(named), len(set(named)), "each once")
        self.assertEqual(set(named), self.parameters)

    def test_no_paragraph_of_the_readme_is_told_again_in_docs(self):
        def normalized(text):
            return " ".join(text.split())
        docs = normalized(" ".join(path.read_text() for path in (ROOT / "docs").glob("*.md")))
        paragraphs = [normalized(p) for p in (ROOT / "README.md").read_text().split("\n\n")]
        prose = [p for p in paragraphs if len(p) >= 60 and not p.startswith(("```", "|", "#"))]
        self.assertGreater(len(prose), 5)
        for paragraph in prose:
            self.assertNotIn(paragraph, docs)
            for sentence in re.split(r"(?<=[.:;])\s", paragraph):
                if len(sentence) >= 80:
                    self.assertNotIn(sentence, docs, "a sentence of the README told again in docs/")

if __name__ == "__main__":
    unittest.main()

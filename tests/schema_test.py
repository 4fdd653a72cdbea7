"""Every event the receiver forwarded during the test command matches the JSON Schema of its
type in schemas/: the events the local run forwarded for each sample in events/ (the smoke test),
and every event the integration tests read back from the bus (DynamoDB Local and moto, webhook
and reconciliation alike), recorded by the test kit in $SENDBLUE_TEST_FORWARDED_LOG.

Run by scripts/test.sh after the smoke test and the cargo tests:
python -m unittest tests/schema_test.py
"""

import json
import os
import pathlib
import unittest

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCHEMAS = {path.stem: json.loads(path.read_text()) for path in (ROOT / "schemas").glob("*.json")}
WEBHOOK_TYPES = {path.stem.replace("-", "_") for path in (ROOT / "functions").iterdir()} - {"reconcile", "forward"}


def validate(test, event):
    schema = SCHEMAS.get(event["detail-type"])
    test.assertIsNotNone(schema, f"no schema for {event['detail-type']}")
    jsonschema.Draft202012Validator(schema).validate(event)


class Schemas(unittest.TestCase):
    def test_one_valid_draft_2020_12_schema_per_webhook_type(self):
        self.assertEqual(set(SCHEMAS), WEBHOOK_TYPES)
        for schema in SCHEMAS.values():
            jsonschema.Draft202012Validator.check_schema(schema)

    def test_the_samples_as_the_local_run_forwarded_them(self):
        log = ROOT / ".tools" / "local-run.log"
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith('{"Source"')]
        samples = {path.stem.replace("-", "_") for path in (ROOT / "events").glob("*.json")} & WEBHOOK_TYPES
        self.assertEqual({line["DetailType"] for line in lines}, samples, "every sample was forwarded")
        for line in lines:
            # The local sink prints what PutEvents would take; a rule's target gets it as below.
            validate(self, {"source": line["Source"], "detail-type": line["DetailType"], "detail": line["Detail"]})

    def test_every_event_the_integration_tests_read_back_from_the_bus(self):
        events = [json.loads(line) for line in open(os.environ["SENDBLUE_TEST_FORWARDED_LOG"])]
        self.assertEqual({e["detail-type"] for e in events}, WEBHOOK_TYPES, "every type was seen")
        origins = {e["detail"]["metadata"]["origin"] for e in events}
        self.assertEqual(origins, {"webhook", "reconciliation"})
        for event in events:
            validate(self, event)
        print(f"{len(events)} forwarded events valid")

    def test_the_shared_samples_accepted_exactly_where_the_receiver_accepts_them(self):
        # schemas/samples/bodies.json: the receiver and the crate are held to it in
        # shared/tests/it/samples.rs.
        samples = json.loads((ROOT / "schemas" / "samples" / "bodies.json").read_text())
        for sample in samples:
            event = {"source": "sendblue", "detail-type": sample["type"], "detail": {
                "metadata": {"webhook_type": sample["type"], "dedup_key": "k",
                             "received_at": "2026-01-01T00:00:00.000Z", "request_id": "r", "origin": "webhook"},
                "data": sample["body"]}}
            valid = jsonschema.Draft202012Validator(SCHEMAS[sample["type"]]).is_valid(event)
            self.assertEqual(valid, sample["accepted"], f"{sample['type']}: {sample['name']}")
        self.assertEqual({s["type"] for s in samples}, WEBHOOK_TYPES, "every type has samples")

    def test_a_schema_refuses_what_the_receiver_never_forwards(self):
        event = json.loads((ROOT / "events" / "receive.json").read_text())
        good = {"source": "sendblue", "detail-type": "receive", "detail": {
            "metadata": {"webhook_type": "receive", "dedup_key": "m", "received_at": "2026-01-01T00:00:00.000Z",
                         "request_id": "r", "origin": "webhook"},
            "data": json.loads(event["body"])}}
        validate(self, good)
        for broken in [
            {**good, "detail-type": "outbound"},
            {**good, "detail": {**good["detail"], "data": {"content": "no handle"}}},
            {**good, "detail": {**good["detail"], "metadata": {**good["detail"]["metadata"], "origin": "replay"}}},
        ]:
            with self.assertRaises(jsonschema.ValidationError):
                jsonschema.Draft202012Validator(SCHEMAS["receive"]).validate(broken)


if __name__ == "__main__":
    unittest.main()

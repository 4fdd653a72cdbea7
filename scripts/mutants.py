#!/usr/bin/env python3
"""The door's and the forwarder's promises, each broken on purpose.

Every mutant changes one spot of the code or the template the way a plausible bug would, and
names the tests that guard it: with the mutant in place they must fail (a test failing, not the
build). `scripts/mutants.sh` runs them against DynamoDB Local and moto (which it starts) and
puts every file back after each one; this script does the work:

    scripts/mutants.py --check        every mutant still applies: its text is found exactly once
                                      (the test command runs this, so the list cannot go stale)
    scripts/mutants.py [NAME ...]     run them (all, or those named), print a verdict each

A mutant that survives (its tests still pass) is a promise no test holds: the run fails.
"""

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def it(*filters):
    """The shared crate's integration tests whose names contain any of `filters`."""
    return ["cargo", "test", "-p", "sendblue-webhooks", "--test", "it", "--", "--include-ignored", *filters]


def unit(*filters):
    """The shared crate's unit tests whose names contain any of `filters`."""
    return ["cargo", "test", "-p", "sendblue-webhooks", "--lib", "--", *filters]


def deploy_test():
    """tests/deploy_test.py, with the test command's light release profile (minutes)."""
    python = ROOT / ".tools/sam-venv/bin/python"
    return ["bash", "-c", f"source scripts/lib.sh && light_release {python} -m unittest tests/deploy_test.py"]


def crash_test():
    """tests/crash_test.py, on freshly built `receive` and `forward` binaries."""
    python = ROOT / ".tools/venv/bin/python"
    return ["sh", "-c", f"cargo build -q -p receive -p forward && {python} -m unittest tests/crash_test.py"]


def contract(*tests):
    """Tests of tests/template_contract.py, by `Class.test_name`."""
    python = str(ROOT / ".tools/sam-venv/bin/python")
    return [python, "-m", "unittest", *(f"tests.template_contract.{t}" for t in tests)]


@dataclasses.dataclass
class Mutant:
    name: str
    promise: str
    path: str
    find: str
    replace: str
    tests: list


DYNAMODB = "shared/src/dedup/dynamodb.rs"
FORWARD = "shared/src/forward/mod.rs"

MUTANTS = [
    Mutant(
        "accept-replaces-a-pending-item",
        "one write wins: a pending event makes every later delivery of its key a duplicate",
        DYNAMODB,
        '"attribute_not_exists(#pk) OR #expires_at < :now_s"',
        '"attribute_not_exists(#pk) OR #expires_at < :now_s OR attribute_not_exists(#expires_at)"',
        it("door::sixty_four_concurrent", "concurrency::a_thousand_shuffled"),
    ),
    Mutant(
        "own-applied-write-is-a-duplicate",
        "the SDK's retry of a write that was applied (its answer lost) counts as this delivery's write",
        "shared/src/dedup/mod.rs",
        "if self.write_id == event.write_id {",
        "if self.write_id == event.write_id && false {",
        it("store_contract::", "door::a_write_whose_answer_was_lost_once"),
    ),
    Mutant(
        "own-applied-mark-is-a-race",
        "the SDK's retry of a mark that was applied (its answer lost) is no race and no second copy",
        DYNAMODB,
        "Ok(if ours { Marked::Now } else { Marked::Already })",
        "Ok(if ours && false { Marked::Now } else { Marked::Already })",
        it("stream::a_mark_whose_answer_was_lost"),
    ),
    Mutant(
        "other-content-not-flagged",
        "the same key with another body is a duplicate flagged content_differs, never merged",
        "shared/src/dedup/mod.rs",
        "same_body: self.body_sha256_hex == event.body_sha256_hex",
        "same_body: true",
        it("fixtures::same_key_with_other_content", "store_contract::"),
    ),
    Mutant(
        "unknown-write-answered-200",
        "a failure before the event is safely written is a 500, so that Sendblue retries",
        "shared/src/outcome.rs",
        "Outcome::StoreFailed(_) => StatusCode::INTERNAL_SERVER_ERROR,",
        "Outcome::StoreFailed(_) => StatusCode::OK,",
        it("door::an_unreachable_table", "door::a_lost_answer", "limits::a_throttled_write"),
    ),
    Mutant(
        "pending-item-expires",
        "a pending item has no expires_at, so the table's TTL can never delete an event not yet forwarded",
        DYNAMODB,
        "            .item(PENDING_TYPE, s(event.webhook_type.sendblue_name()))\n",
        "            .item(PENDING_TYPE, s(event.webhook_type.sendblue_name()))\n"
        "            .item(EXPIRES_AT, n(event.now_s() + 3600))\n",
        it("store_contract::dynamodb_store_writes_the_documented_item"),
    ),
    Mutant(
        "mark-keeps-the-body",
        "the mark drops the body: the message is not kept at rest once it is on the bus",
        DYNAMODB,
        "REMOVE #body, #pending_type",
        "REMOVE #pending_type",
        it("store_contract::dynamodb_store_writes_the_documented_item", "door::every_type"),
    ),
    Mutant(
        "mark-ignores-which-write",
        "the mark applies only to the same pending item (its write_id), never to a later one under the key",
        DYNAMODB,
        '"#status = :pending AND #write_id = :write_id"',
        '"#status = :pending AND (#write_id = :write_id OR #write_id <> :write_id)"',
        it("store_contract::dynamodb_store_keeps_the_contract"),
    ),
    Mutant(
        "pending-index-newest-first",
        "the sweep takes the oldest pending events first",
        DYNAMODB,
        ".scan_index_forward(true)",
        ".scan_index_forward(false)",
        it("store_contract::dynamodb_store_keeps_the_contract"),
    ),
    Mutant(
        "a-key-twice-in-a-batch-goes-twice",
        "a key named twice in one batch goes out once",
        FORWARD,
        "_ if !seen.insert(pks[index]) => {",
        "_ if !seen.insert(pks[index]) && false => {",
        unit("forward::tests"),
    ),
    Mutant(
        "the-last-refused-entry-is-the-failure",
        "after a partial PutEvents the first refused entry is where the retry starts, so none is left behind",
        FORWARD,
        "report.failed_at.get_or_insert(outgoing.index);",
        "report.failed_at = Some(outgoing.index);",
        it("door::a_partial_put_events", "stream::a_partial_put_events"),
    ),
    Mutant(
        "stream-hands-back-nothing",
        "a batch that failed is handed back to the mapping from its first failed record",
        "shared/src/forward/stream.rs",
        ".and_then(|index| records.get(index))",
        ".and_then(|index| records.get(index)).filter(|_| false)",
        it("stream::with_the_bus_down", "stream::a_partial_put_events"),
    ),
    Mutant(
        "the-stream-takes-the-sweeps-events",
        "the stream and the sweep split pending events by age, so after an outage they never both send the backlog",
        FORWARD,
        "self.forward_pending_for_less_than(pks, Some(sweep_min_age_ms / 2))",
        "self.forward_pending_for_less_than(pks, None)",
        it("stream::after_an_outage"),
    ),
    Mutant(
        "stream-reads-every-record-as-new",
        "only a record whose new image is PENDING names an event (marks, TTL deletions and watermarks do not)",
        "shared/src/forward/stream.rs",
        "if status != EventStatus::Pending.as_str() {",
        "if status.is_empty() {",
        unit("forward::stream::tests"),
    ),
    Mutant(
        "a-poison-item-blocks-the-shard",
        "a malformed pending item is skipped and counted, never blocking what comes after it",
        FORWARD,
        '"malformed pending item: skipped");\n                    report.malformed += 1;\n                    continue;',
        '"malformed pending item: skipped");\n                    report.failed_at = Some(index);\n                    return report;',
        it("door::a_malformed_pending_item", "stream::a_poison_record"),
    ),
    Mutant(
        "no-marks",
        "every event that went out is marked forwarded",
        FORWARD,
        "join_all(went_out.iter().map(",
        "join_all(went_out.iter().take(0).map(",
        it("stream::the_stream_puts_each", "door::every_type"),
    ),
    Mutant(
        "mark-before-put",
        "an event is marked only after the bus took it: a death in between sends it twice, never zero times",
        FORWARD,
        "        let results = match self.sink.put_batch(&entries).await {\n",
        "        for o in &batch {\n"
        "            let _ = self.store.mark_forwarded(&o.event, now_ms() / 1000 + self.dedup_ttl_seconds).await;\n"
        "        }\n"
        "        let results = match self.sink.put_batch(&entries).await {\n",
        it("stream::a_forward_that_dies", "stream::with_the_bus_down", "door::with_the_bus_down"),
    ),
    Mutant(
        "a-failed-mark-is-not-counted",
        "a mark that failed (the one double-forward window) is counted",
        FORWARD,
        "report.mark_failures += 1;",
        "report.mark_failures += 0;",
        it("stream::a_failed_mark"),
    ),
    Mutant(
        "a-batch-over-the-request-limit",
        "a PutEvents request stays under EventBridge's 256 KiB: the largest events go out one a call",
        "shared/src/bus/mod.rs",
        "pub const MAX_BATCH_BYTES: usize = 256 * 1024;",
        "pub const MAX_BATCH_BYTES: usize = 1024 * 1024;",
        it("door::the_largest_accepted_body"),
    ),
    Mutant(
        "the-sweep-takes-young-events",
        "the sweep leaves events younger than its setting to the stream",
        "shared/src/forward/sweep.rs",
        "let before_ms = (now_ms + 1).saturating_sub(min_age_ms);",
        "let before_ms = now_ms + 1;",
        it("door::the_sweep_reports_the_oldest"),
    ),
    Mutant(
        "the-sweep-reports-no-age",
        "the sweep measures the oldest pending event before it forwards, for the oldest-pending alarm",
        "shared/src/forward/sweep.rs",
        ".map(|ms| now_ms.saturating_sub(ms)),",
        ".map(|_| 0),",
        it("door::the_sweep_reports_the_oldest", "stream::when_the_stream_gives_up"),
    ),
    Mutant(
        "the-sweep-stops-after-one-type",
        "the sweep goes through every webhook type",
        "shared/src/forward/sweep.rs",
        "for webhook_type in WebhookType::ALL {\n            let mut after",
        "for webhook_type in WebhookType::ALL.into_iter().take(1) {\n            let mut after",
        it("door::every_type"),
    ),
    Mutant(
        "the-sweep-stops-after-one-page",
        "the sweep pages the pending index to its end",
        "shared/src/forward/sweep.rs",
        "Some(next) => after = Some(next),",
        "Some(_) => break,",
        it("door::the_sweep_goes_through_every_page"),
    ),
    Mutant(
        "the-scheduled-sweep-reads-its-age-wrong",
        "the forward binary, invoked by its schedule, sweeps what is pending longer than its setting",
        "shared/src/forward/function.rs",
        "forwarder.sweep(config.sweep_min_age_seconds * 1000, stop_at)",
        "forwarder.sweep(config.sweep_min_age_seconds * 1000 * 1000, stop_at)",
        crash_test(),
    ),
    Mutant(
        "data-re-serialised",
        "the forwarded data is the body byte for byte",
        "shared/src/envelope.rs",
        "    detail.push_str(body);\n",
        "    detail.push_str(&serde_json::from_str::<serde_json::Value>(body).unwrap().to_string());\n",
        it("door::every_type", "fixtures::each_type_is_forwarded_once"),
    ),
    Mutant(
        "reconciliation-not-marked-as-such",
        "reconciliation accepts through the same door, its events marked origin reconciliation",
        "shared/src/reconcile/mod.rs",
        "origin: Origin::Reconciliation,",
        "origin: Origin::Webhook,",
        it("reconcile::"),
    ),
    Mutant(
        "local-mode-does-not-forward",
        "the local mode forwards each accepted event in-process, as it arrives",
        "shared/src/pipeline.rs",
        "let report = self.forward(&[pk]).await;",
        "let report = self.forward(&[]).await;",
        it("fixtures::each_type_is_forwarded_once"),
    ),
    Mutant(
        "long-keys-not-hashed",
        "a key longer than a partition key may be is hashed, not refused",
        "shared/src/dedup_key.rs",
        "    if key.len() <= MAX_KEY_BYTES {\n        return key;",
        "    if key.len() <= usize::MAX {\n        return key;",
        it("limits::keys_too_long"),
    ),
    Mutant(
        "template-stream-without-images",
        "the tests' table is the template's: its stream (here losing the new image forward reads)",
        "template.yaml",
        "StreamViewType: NEW_IMAGE",
        "StreamViewType: KEYS_ONLY",
        it("stream::the_stream_puts_each"),
    ),
    Mutant(
        "template-pending-index-renamed",
        "the tests' table is the template's: its pending index",
        "template.yaml",
        "        - IndexName: pending\n",
        "        - IndexName: pending_by_type\n",
        it("store_contract::dynamodb_store_keeps_the_contract"),
    ),
    Mutant(
        "template-no-partial-batch-answers",
        "the mapping reads the function's batchItemFailures",
        "template.yaml",
        "FunctionResponseTypes: [ReportBatchItemFailures]",
        "FunctionResponseTypes: []",
        contract("TemplateContract.test_forward_reads_the_stream_as_the_design_says_and_sweeps_on_a_schedule"),
    ),
    Mutant(
        "template-second-copies-of-the-sweep-unwatched",
        "a possible second copy is alarmed from either trigger",
        "template.yaml",
        "MetricName: MarkRaces, Dimensions: [{Name: Trigger, Value: sweep}]",
        "MetricName: MarkRaces, Dimensions: [{Name: Trigger, Value: stream}]",
        contract("TemplateContract.test_every_refusal_and_every_event_at_risk_is_alarmed_and_charted"),
    ),
    Mutant(
        "cargo-lambda-route-ignores-partial-answers",
        "the cargo-lambda route's stream mapping is the template's: it reads batchItemFailures",
        "scripts/deploy-cargo-lambda.sh",
        "      --function-response-types ReportBatchItemFailures \\\n",
        "",
        deploy_test(),
    ),
]


def occurrences(mutant):
    return (ROOT / mutant.path).read_text().count(mutant.find)


def check():
    names = [m.name for m in MUTANTS]
    problems = [f"{n}: named twice" for n in set(names) if names.count(n) > 1]
    for mutant in MUTANTS:
        found = occurrences(mutant)
        if found != 1:
            problems.append(f"{mutant.name}: its text is in {mutant.path} {found} times, not once")
    for problem in problems:
        print(f"check: mutant {problem} FAILED")
    print(f"check: {len(MUTANTS)} mutants apply {'ok' if not problems else 'FAILED'}")
    return not problems


def failed_tests(output):
    """The tests the output shows failing (libtest's and unittest's), set-ups left out: a
    failure before any test ran (a build, a deploy) kills no mutant."""
    names = set()
    for line in output.splitlines():
        if line.startswith("test ") and line.endswith("FAILED"):
            names.add(line.split()[1])
        elif line.startswith(("FAIL: ", "ERROR: ")):
            names.add(line.split()[1])
    return sorted(n for n in names if not n.startswith(("setUp", "tearDown")))


def run(mutant):
    path = ROOT / mutant.path
    original = path.read_text()
    path.write_text(original.replace(mutant.find, mutant.replace, 1))
    started = time.monotonic()
    try:
        result = subprocess.run(mutant.tests, cwd=ROOT, capture_output=True, text=True)
    finally:
        path.write_text(original)
    output = result.stdout + result.stderr
    seconds = time.monotonic() - started
    failing = failed_tests(output)
    if failing:
        verdict = "killed"
    elif result.returncode == 0:
        verdict = "SURVIVED"
    else:
        verdict = "NO TEST RAN"  # the build or a set-up failed: the mutant proves nothing
    print(f"{verdict:<9} {mutant.name} ({seconds:.0f} s): {mutant.promise}", flush=True)
    for name in failing:
        print(f"            failed: {name}", flush=True)
    if verdict != "killed":
        print(output[-3000:], flush=True)
    return verdict == "killed"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check that every mutant applies")
    parser.add_argument("names", nargs="*", help="the mutants to run (default: all)")
    args = parser.parse_args()
    if not check():
        return 1
    if args.check:
        return 0
    chosen = [m for m in MUTANTS if not args.names or m.name in args.names]
    unknown = set(args.names) - {m.name for m in chosen}
    if unknown:
        print(f"no such mutant: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    for variable in ["SENDBLUE_TEST_DYNAMODB_ENDPOINT", "SENDBLUE_TEST_MOTO_ENDPOINT"]:
        if not os.environ.get(variable):
            print(f"{variable} is not set: run scripts/mutants.sh, which starts the emulators", file=sys.stderr)
            return 2
    killed = sum(run(mutant) for mutant in chosen)
    print(f"mutants: {killed} of {len(chosen)} killed")
    return 0 if killed == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())

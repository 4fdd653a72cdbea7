//! Reconciliation against DynamoDB Local and moto, reading a fake of Sendblue's messages API
//! over HTTP: what the webhooks missed is forwarded once, what they brought is not forwarded
//! again, and the watermark only moves forward, through pagination, 429s, 500s and records that
//! change while a run reads them.

use std::sync::Arc;
use std::time::Duration;

use sendblue_testkit::messages_api::{
    record, FakeMessagesApi, Trouble, API_KEY_ID, API_SECRET_KEY,
};
use sendblue_testkit::*;
use sendblue_webhooks::dedup::{DynamoDbStore, MemoryStore, WatermarkStore};
use sendblue_webhooks::forward::Forwarder;
use sendblue_webhooks::reconcile::messages_api::{ApiCredentials, HttpMessagesApi};
use sendblue_webhooks::reconcile::{Failed, ReconcileError, Reconciler, Summary, Walk, WATERMARK};
use sendblue_webhooks::time::{iso_ms, parse_iso_ms};
use sendblue_webhooks::{WebhookPipeline, WebhookType};
use serde_json::{json, Value};
use tokio::time::Instant;

pub(crate) const MINUTE_MS: u64 = 60_000;

pub(crate) fn walk() -> Walk {
    Walk {
        lookback_ms: 60 * MINUTE_MS,
        overlap_ms: 2 * MINUTE_MS,
        page_limit: 10,
        until_ms: None,
        since_ms: None,
        dry_run: false,
        settle_ms: 0,
    }
}

pub(crate) fn http_api(fake: &FakeMessagesApi) -> HttpMessagesApi {
    let credentials =
        ApiCredentials { key_id: API_KEY_ID.into(), secret_key: API_SECRET_KEY.into() };
    HttpMessagesApi::new(&fake.api_base(), credentials, 100).unwrap()
}

/// `n` messages updated over the last `minutes`, oldest first: even ones inbound, odd outbound.
pub(crate) fn messages(prefix: &str, n: usize, minutes: u64) -> Vec<Value> {
    let start = now_ms() - minutes * MINUTE_MS;
    (0..n)
        .map(|i| {
            let outbound = i % 2 == 1;
            let status = if outbound { "DELIVERED" } else { "RECEIVED" };
            let at = start + (i as u64) * minutes * MINUTE_MS / n.max(1) as u64;
            record(&format!("{prefix}-{i}"), outbound, status, at)
        })
        .collect()
}

pub(crate) struct Rig {
    pub(crate) aws: Emulators,
    pub(crate) table: String,
    bus: String,
    queue: String,
    pub(crate) fake: FakeMessagesApi,
}

impl Rig {
    pub(crate) async fn start(records: Vec<Value>) -> Self {
        let aws = Emulators::connect().await;
        let table = aws.create_table().await;
        let (bus, queue) = aws.create_bus().await;
        let fake = FakeMessagesApi::start(records).await;
        Self { aws, table, bus, queue, fake }
    }

    pub(crate) fn store(&self) -> DynamoDbStore {
        self.aws.store(&self.table)
    }

    async fn run_for(&self, walk: Walk, budget: Duration) -> Result<Summary, Failed> {
        let (store, api) = (self.store(), http_api(&self.fake));
        reconcile(&store, &api, walk, budget).await
    }

    pub(crate) async fn run(&self) -> Result<Summary, Failed> {
        self.run_for(walk(), Duration::from_secs(60)).await
    }

    /// Each forwarded event's (detail-type, dedup key, origin), in the order they reached the
    /// bus, once `forward` has swept what was accepted.
    pub(crate) async fn forwarded(&self) -> Vec<(String, String, String)> {
        let far = Instant::now() + Duration::from_secs(600);
        let swept = self.aws.forwarder(&self.table, &self.bus).sweep(0, far).await.unwrap();
        assert_eq!(swept.forward.failed_at, None, "{swept:?}");
        self.aws
            .drain(&self.queue)
            .await
            .iter()
            .map(|e| {
                let metadata = &e.detail["metadata"];
                (
                    e.detail_type.clone(),
                    metadata["dedup_key"].as_str().unwrap().to_owned(),
                    metadata["origin"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// A webhook receiver of `webhook_type` on the same table and bus.
    fn receiver(&self, webhook_type: WebhookType) -> WebhookPipeline<DynamoDbStore> {
        self.aws.receiver(webhook_type, &self.table)
    }
}

pub(crate) async fn reconcile<S>(
    store: &S,
    api: &HttpMessagesApi,
    walk: Walk,
    budget: Duration,
) -> Result<Summary, Failed>
where
    S: sendblue_webhooks::dedup::DedupStore + WatermarkStore,
{
    Reconciler { store, api, walk, dedup_ttl_seconds: 86_400 }.run(Instant::now() + budget).await
}

/// A memory store, and a forwarder from it that keeps what it forwards.
pub(crate) fn memory_forwarder() -> (Arc<MemoryStore>, Forwarder<Arc<MemoryStore>, RecordingSink>) {
    let store = Arc::new(MemoryStore::default());
    let forwarder = Forwarder {
        store: Arc::clone(&store),
        sink: RecordingSink::default(),
        event_source: "sendblue".into(),
        dedup_ttl_seconds: 86_400,
    };
    (store, forwarder)
}

/// The webhook type a record is routed to, and its key as the webhook path keys it.
pub(crate) fn routed(record: &Value) -> (String, String) {
    let handle = record["message_handle"].as_str().unwrap();
    if record["is_outbound"] == true {
        ("outbound".into(), format!("{handle}#{}", record["status"].as_str().unwrap()))
    } else {
        ("receive".into(), handle.to_owned())
    }
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn messages_a_refused_webhook_lost_are_recovered_once() {
    let records = messages("refused", 25, 50);
    let rig = Rig::start(records.clone()).await;
    // For the last hour Sendblue's deliveries met the wrong secret: 401, nothing kept.
    let receive = rig.receiver(WebhookType::Receive);
    let refused = fixture("bad/wrong-secret");
    assert_eq!(answer(&receive, refused).await.0, 401);

    let summary = rig.run().await.unwrap();
    assert_eq!(
        (summary.records, summary.recovered, summary.duplicates),
        (25, 25, 0),
        "{summary:?}"
    );
    assert!(summary.pages >= 3, "10 per page: {summary:?}");
    let forwarded = rig.forwarded().await;
    let mut expected: Vec<(String, String)> = records.iter().map(routed).collect();
    let mut got: Vec<(String, String)> =
        forwarded.iter().map(|(t, k, _)| (t.clone(), k.clone())).collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "each message once, routed and keyed as its webhook would be");
    assert!(forwarded.iter().all(|(_, _, origin)| origin == "reconciliation"));

    let again = rig.run().await.unwrap();
    assert_eq!((again.recovered, again.duplicates), (0, again.records), "{again:?}");
    assert!(rig.forwarded().await.is_empty(), "a second run forwards nothing");
    assert!(again.watermark_after >= summary.watermark_after);
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn what_the_webhooks_delivered_is_not_forwarded_again_and_a_late_webhook_is_a_duplicate() {
    let records = messages("delivered", 12, 30);
    let rig = Rig::start(records.clone()).await;
    // The first half came by webhook.
    for record in &records[..6] {
        let (detail_type, _) = routed(record);
        let t = WebhookType::from_name(&detail_type).unwrap();
        let (status, _) = answer(&rig.receiver(t), with_body(t, record.to_string())).await;
        assert_eq!(status, 200);
    }
    let summary = rig.run().await.unwrap();
    assert_eq!((summary.recovered, summary.duplicates), (6, 6), "{summary:?}");
    let forwarded = rig.forwarded().await;
    assert_eq!(forwarded.iter().filter(|(_, _, o)| o == "webhook").count(), 6);
    assert_eq!(forwarded.iter().filter(|(_, _, o)| o == "reconciliation").count(), 6);

    // The second half's webhooks arrive late, after reconciliation forwarded them: duplicates.
    for record in &records[6..] {
        let (detail_type, _) = routed(record);
        let t = WebhookType::from_name(&detail_type).unwrap();
        let (status, body) = answer(&rig.receiver(t), with_body(t, record.to_string())).await;
        assert_eq!((status, body["duplicate"].clone()), (200, json!(true)));
    }
    assert!(rig.forwarded().await.is_empty());
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn two_runs_at_once_never_walk_together_each_message_once_and_the_watermark_only_moves_forward(
) {
    let records = messages("overlapping", 40, 40);
    let rig = Rig::start(records).await;
    let (a, b) = tokio::join!(rig.run(), rig.run());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.recovered + b.recovered, 40, "{a:?} {b:?}");
    assert!(a.skipped != b.skipped, "one walks, the other finds the lease held: {a:?} {b:?}");
    assert_eq!(rig.forwarded().await.len(), 40, "each message reached the bus once");

    let store = rig.store();
    let watermark = store.watermark(WATERMARK).await.unwrap().unwrap();
    store.advance_watermark(WATERMARK, watermark - 10 * MINUTE_MS).await.unwrap();
    assert_eq!(store.watermark(WATERMARK).await.unwrap(), Some(watermark), "never backwards");
    store.advance_watermark(WATERMARK, watermark + 1).await.unwrap();
    assert_eq!(store.watermark(WATERMARK).await.unwrap(), Some(watermark + 1));
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn the_api_down_fails_the_run_keeps_the_watermark_and_the_next_run_recovers() {
    let rig = Rig::start(messages("before", 5, 30)).await;
    rig.run().await.unwrap();
    let watermark = rig.store().watermark(WATERMARK).await.unwrap();
    assert!(watermark.is_some());
    assert_eq!(rig.forwarded().await.len(), 5);

    // Updated after the walk's end: what the next run reads.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let during: Vec<Value> = (0..7)
        .map(|i| {
            record(&format!("during-outage-{i}"), false, "RECEIVED", watermark.unwrap() + 1 + i)
        })
        .collect();
    rig.fake.account().records.extend(during);
    rig.fake.account().down = true;
    let failed = rig.run().await;
    assert!(matches!(&failed, Err(Failed { error: ReconcileError::Api(_), .. })), "{failed:?}");
    assert_eq!(rig.store().watermark(WATERMARK).await.unwrap(), watermark, "unchanged");

    rig.fake.account().down = false;
    let summary = rig.run().await.unwrap();
    assert_eq!(summary.recovered, 7, "{summary:?}");
    assert_eq!(rig.forwarded().await.len(), 7);
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn rate_limits_are_waited_out_and_a_500_fails_the_run() {
    let rig = Rig::start(messages("limited", 15, 20)).await;
    rig.fake.account().trouble.push_back(Trouble::RateLimited(1));
    let started = std::time::Instant::now();
    let summary = rig.run().await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After respected");
    assert_eq!(summary.recovered, 15);

    rig.fake.account().trouble.push_back(Trouble::Failing);
    assert!(matches!(rig.run().await, Err(Failed { error: ReconcileError::Api(_), .. })));
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn records_that_change_while_a_run_reads_are_neither_skipped_nor_forwarded_twice() {
    let records = messages("changing", 20, 20);
    let rig = Rig::start(records.clone()).await;
    let first = records[1]["message_handle"].as_str().unwrap().to_owned();
    // After the first page: an outbound message read on it moves on to READ (to the end of the
    // list, shifting every record after it by one), and one not yet read is updated too.
    rig.fake.account().changes.push((
        1,
        Box::new(move |records: &mut Vec<Value>| {
            let later = now_ms();
            let moved = records.iter_mut().find(|r| r["message_handle"] == first.as_str()).unwrap();
            moved["status"] = json!("READ");
            moved["date_updated"] = json!(iso_ms(later));
            records[15]["content"] = json!("edited");
            records[15]["date_updated"] = json!(iso_ms(later + 1));
        }),
    ));
    let summary = rig.run().await.unwrap();
    // The run's end was fixed when it started: the records updated during it are the next's.
    let next = rig.run().await.unwrap();
    let forwarded = rig.forwarded().await;
    let keys: std::collections::BTreeSet<(String, String)> =
        forwarded.iter().map(|(t, k, _)| (t.clone(), k.clone())).collect();
    assert_eq!(keys.len(), forwarded.len(), "nothing forwarded twice: {forwarded:?}");
    for record in &records {
        assert!(keys.contains(&routed(record)), "{} was skipped", record["message_handle"]);
    }
    let handle = records[1]["message_handle"].as_str().unwrap();
    assert!(keys.contains(&("outbound".into(), format!("{handle}#READ"))), "the new status too");
    assert_eq!(summary.recovered + next.recovered, 21, "{summary:?} {next:?}");
}

/// The 5,000-message backlog on in-memory backends (the emulators would take minutes to store
/// and forward that many): drained across short runs, none forwarded twice, never more than
/// the API's 100 requests in any 10 seconds.
#[tokio::test]
async fn a_backlog_of_five_thousand_drains_across_runs_within_the_rate_limit() {
    let fake = FakeMessagesApi::start(messages("backlog", 5000, 55)).await;
    let (store, forwarder) = memory_forwarder();
    // At the deployed pace: half the rate limit.
    let share = sendblue_webhooks::reconcile::config::DEFAULT_API_SHARE_PERCENT;
    let credentials =
        ApiCredentials { key_id: API_KEY_ID.into(), secret_key: API_SECRET_KEY.into() };
    let api = HttpMessagesApi::new(&fake.api_base(), credentials, share).unwrap();
    let walk = Walk { page_limit: 100, ..walk() };
    let started = std::time::Instant::now();
    let mut runs = Vec::new();
    for _ in 0..12 {
        let summary = reconcile(&*store, &api, walk, Duration::from_secs(2)).await.unwrap();
        let done = !summary.stopped_early;
        runs.push(summary);
        if done {
            break;
        }
    }
    let forwarded: usize = runs.iter().map(|r| r.recovered).sum();
    forwarder.sweep(0, Instant::now() + Duration::from_secs(60)).await.unwrap();
    let calls = fake.account().requests.len();
    let busiest = fake.busiest_ten_seconds();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "backlog: {} runs, {calls} API calls, forwarded {forwarded} in {seconds:.1} s \
         ({:.0} records/s), busiest 10 s: {busiest} calls",
        runs.len(),
        forwarded as f64 / seconds
    );
    assert!(runs.len() > 1, "more than one run: {runs:?}");
    assert_eq!(forwarded, 5000);
    assert_eq!(forwarder.sink.details().len(), 5000, "none twice");
    assert!(busiest as u64 <= share, "{busiest} calls within 10 s");
}

/// A backfill that asks for more than the dedup window (here `--since 48h` with a 24 h window)
/// starts at the window's edge: the record updated 30 h ago, whose dedup item would have
/// expired, is not forwarded again, and the summary names the span left unread. A dry run
/// counts the same way.
#[tokio::test]
async fn a_walk_never_starts_before_the_dedup_window_and_names_the_span_it_cannot_cover() {
    let hour_ms = 60 * MINUTE_MS;
    let old = record("before-the-window", false, "RECEIVED", now_ms() - 30 * hour_ms);
    let recent = record("inside-the-window", false, "RECEIVED", now_ms() - hour_ms);
    let fake = FakeMessagesApi::start(vec![old, recent]).await;
    let (store, forwarder) = memory_forwarder();
    let api = http_api(&fake);
    let asked_ms = now_ms() - 48 * hour_ms;
    for dry_run in [true, false] {
        let walk = Walk::backfill(asked_ms, None, dry_run);
        let summary = reconcile(&*store, &api, walk, Duration::from_secs(30)).await.unwrap();
        assert_eq!((summary.records, summary.recovered), (1, 1), "dry run {dry_run}: {summary:?}");
        assert_eq!(summary.uncovered_from, Some(iso_ms(asked_ms)));
        let edge_ms = summary.uncovered_to.as_deref().and_then(parse_iso_ms).unwrap();
        let window_ms = 86_400_000;
        assert!(edge_ms.abs_diff(now_ms() - window_ms) < 60_000, "the edge is now - 24 h");
    }
    forwarder.sweep(0, Instant::now() + Duration::from_secs(60)).await.unwrap();
    let keys: Vec<String> = forwarder
        .sink
        .details()
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).unwrap()["metadata"]["dedup_key"].to_string())
        .collect();
    assert_eq!(keys, ["\"inside-the-window\""]);
}

//! How a reconciliation walk keeps faith with the API and with the webhooks: progress kept page
//! by page, deadlines kept, the newest minutes left to the webhooks, an API that breaks its
//! order caught before it moves the watermark, ties and moving records never skipped (a
//! property test against an API that shuffles ties and updates records mid-walk), a record
//! that fails every run set aside, and the rate limit shared.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use sendblue_testkit::messages_api::{
    contact, record, FakeMessagesApi, Trouble, API_KEY_ID, API_SECRET_KEY,
};
use sendblue_testkit::*;
use sendblue_webhooks::dedup::{MemoryStore, WatermarkStore};
use sendblue_webhooks::reconcile::messages_api::{
    ApiCredentials, ApiError, HttpMessagesApi, Listing, MessagesApi, Page, PageQuery, Pagination,
};
use sendblue_webhooks::reconcile::{
    walked_lists, Failed, ReconcileError, Reconciler, Walk, SET_ASIDE_AFTER_RUNS, WATERMARK,
};
use sendblue_webhooks::time::{iso_ms, parse_iso_ms};
use sendblue_webhooks::WebhookType;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::reconcile::{
    http_api, memory_forwarder, messages, reconcile, routed, walk, Rig, MINUTE_MS,
};

#[tokio::test]
async fn a_run_that_fails_mid_walk_keeps_the_pages_it_settled() {
    let records = messages("paged", 30, 30);
    let fake = FakeMessagesApi::start(records.clone()).await;
    fake.account().trouble_after.push((2, Trouble::Failing));
    let (store, forwarder) = memory_forwarder();
    let api = http_api(&fake);
    let failed = reconcile(&*store, &api, walk(), Duration::from_secs(30)).await.unwrap_err();
    assert!(matches!(failed.error, ReconcileError::Api(_)), "{failed:?}");
    // Two pages of ten, the second starting at the first one's last record (read again).
    let settled = failed.summary.recovered;
    assert_eq!((failed.summary.pages, settled), (2, 19), "{:?}", failed.summary);
    let last_ms = parse_iso_ms(records[settled - 1]["date_updated"].as_str().unwrap()).unwrap();
    assert_eq!(store.watermark(WATERMARK).await.unwrap(), Some(last_ms), "saved");
    let next = reconcile(&*store, &api, walk(), Duration::from_secs(30)).await.unwrap();
    assert_eq!(next.recovered, 30 - settled, "only what the failed run had not: {next:?}");
    forwarder.sweep(0, Instant::now() + Duration::from_secs(60)).await.unwrap();
    assert_eq!(forwarder.sink.details().len(), 30, "each once");
}

#[tokio::test]
async fn a_retry_after_longer_than_the_time_left_ends_the_run_in_time_with_its_progress() {
    let fake = FakeMessagesApi::start(messages("late", 20, 20)).await;
    fake.account().trouble_after.push((1, Trouble::RateLimited(30)));
    let (store, _) = memory_forwarder();
    let api = http_api(&fake);
    let started = std::time::Instant::now();
    let failed = reconcile(&*store, &api, walk(), Duration::from_secs(3)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "not waited past its deadline");
    assert!(matches!(failed.error, ReconcileError::Api(ApiError::RateLimited)), "{failed:?}");
    assert_eq!(failed.summary.recovered, 10, "{:?}", failed.summary);
    assert!(store.watermark(WATERMARK).await.unwrap().is_some(), "the first page is kept");
}

#[tokio::test]
async fn the_newest_minutes_are_left_to_the_webhooks() {
    let settled = record("settled", false, "RECEIVED", now_ms() - 10 * MINUTE_MS);
    let fresh = record("fresh", false, "RECEIVED", now_ms() - 30_000);
    let fake = FakeMessagesApi::start(vec![settled, fresh.clone()]).await;
    let (store, _) = memory_forwarder();
    let api = http_api(&fake);
    let walk = Walk { settle_ms: 2 * MINUTE_MS, ..walk() };
    let summary = reconcile(&*store, &api, walk, Duration::from_secs(30)).await.unwrap();
    assert_eq!((summary.records, summary.recovered), (1, 1), "{summary:?}");
    let covered_ms = parse_iso_ms(summary.covered_to.as_deref().unwrap()).unwrap();
    assert!(covered_ms.abs_diff(now_ms() - 2 * MINUTE_MS) < 5_000, "{summary:?}");
    // Its webhook, arriving now, is the first to bring it: not a duplicate of a "recovery".
    let receiver = sendblue_webhooks::WebhookPipeline::new(
        sendblue_webhooks::WebhookType::Receive,
        &config(sendblue_webhooks::WebhookType::Receive, sendblue_webhooks::config::Backend::Local),
        std::sync::Arc::clone(&store),
        sendblue_webhooks::pipeline::ByStream,
    );
    let (status, body) =
        answer(&receiver, with_body(sendblue_webhooks::WebhookType::Receive, fresh.to_string()))
            .await;
    assert_eq!((status, body.get("duplicate")), (200, None), "{body}");
}

#[tokio::test]
async fn an_api_that_ignores_the_sort_stops_the_walk_before_it_moves_the_watermark() {
    let fake = FakeMessagesApi::start(messages("unsorted", 25, 30)).await;
    fake.account().newest_first = true;
    let (store, _) = memory_forwarder();
    let api = http_api(&fake);
    let failed = reconcile(&*store, &api, walk(), Duration::from_secs(30)).await.unwrap_err();
    assert!(matches!(failed.error, ReconcileError::OrderNotKept(_)), "{failed:?}");
    assert_eq!(failed.error.reason(), "order");
    assert_eq!(store.watermark(WATERMARK).await.unwrap(), None, "not moved to the newest record");
    // Once the API keeps its order again, the next run reads everything.
    fake.account().newest_first = false;
    let next = reconcile(&*store, &api, walk(), Duration::from_secs(30)).await.unwrap();
    assert_eq!(next.records, 25, "{next:?}");
}

#[tokio::test]
async fn a_walk_takes_at_most_its_share_of_the_rate_limit() {
    let fake = FakeMessagesApi::start(messages("paced", 300, 30)).await;
    let (store, _) = memory_forwarder();
    let credentials = sendblue_webhooks::reconcile::messages_api::ApiCredentials {
        key_id: sendblue_testkit::messages_api::API_KEY_ID.into(),
        secret_key: sendblue_testkit::messages_api::API_SECRET_KEY.into(),
    };
    let default_share = sendblue_webhooks::reconcile::config::DEFAULT_API_SHARE_PERCENT;
    let api = sendblue_webhooks::reconcile::messages_api::HttpMessagesApi::new(
        &fake.api_base(),
        credentials,
        default_share,
    )
    .unwrap();
    let walk = Walk { page_limit: 5, ..walk() };
    let summary = reconcile(&*store, &api, walk, Duration::from_secs(60)).await.unwrap();
    assert_eq!(summary.recovered, 300);
    let requests = fake.account().requests.clone();
    let span = *requests.last().unwrap() - requests[0];
    let per_10_s = (requests.len() - 1) as f64 / span.as_secs_f64() * 10.0;
    println!("paced: {} requests in {span:?}: {per_10_s:.1} per 10 s", requests.len());
    assert!(requests.len() > 50, "{}", requests.len());
    assert!(per_10_s <= default_share as f64, "{per_10_s} requests per 10 s");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_record_refused_in_every_run_is_set_aside_after_a_few_and_holds_nothing_back() {
    let mut records = messages("around", 6, 30);
    // Too large for a DynamoDB item: refused by the table every time.
    records[3]["content"] = json!("x".repeat(450 * 1024));
    let rig = Rig::start(records.clone()).await;
    for run in 1..SET_ASIDE_AFTER_RUNS {
        let failed = rig.run().await.unwrap_err();
        assert_eq!(failed.error.reason(), "store", "run {run}: {failed:?}");
        assert_eq!(failed.summary.set_aside, 0);
        let third_ms = parse_iso_ms(records[2]["date_updated"].as_str().unwrap()).unwrap();
        let watermark = rig.store().watermark(WATERMARK).await.unwrap();
        assert_eq!(watermark, Some(third_ms), "the records before it are kept, run {run}");
    }
    let summary = rig.run().await.unwrap();
    assert_eq!(summary.set_aside, 1, "{summary:?}");
    let forwarded = rig.forwarded().await;
    assert_eq!(forwarded.len(), 5, "all but the one set aside: {forwarded:?}");
}

/// An in-process messages API for the property test: orders by `date_updated` as asked, but
/// lists tied records in a new order on every request, and applies updates between requests.
struct ShufflingApi {
    state: Mutex<ShufflingState>,
}

struct ShufflingState {
    records: Vec<Value>,
    rng: fastrand::Rng,
    /// Before request `n` (from 0), record `i` is updated to time `t`.
    updates: Vec<(usize, usize, u64)>,
    requests: usize,
    tie_orders_seen: BTreeSet<Vec<String>>,
}

fn updated_ms(record: &Value) -> u64 {
    parse_iso_ms(record["date_updated"].as_str().unwrap()).unwrap()
}

impl MessagesApi for ShufflingApi {
    async fn page(&self, query: &PageQuery) -> Result<Page, ApiError> {
        let mut state = self.state.lock().unwrap();
        let request = state.requests;
        state.requests += 1;
        let due: Vec<(usize, u64)> = state
            .updates
            .iter()
            .filter(|(n, _, _)| *n == request)
            .map(|(_, i, t)| (*i, *t))
            .collect();
        for (i, t) in due {
            let record = &mut state.records[i];
            record["status"] = json!("READ");
            record["date_updated"] = json!(iso_ms(t));
        }
        let until = query.updated_until_ms.unwrap_or(u64::MAX);
        let mut listed: Vec<Value> = state
            .records
            .iter()
            .filter(|r| (query.updated_since_ms..=until).contains(&updated_ms(r)))
            .cloned()
            .collect();
        let mut rng = state.rng.clone();
        rng.shuffle(&mut listed);
        state.rng = rng;
        listed.sort_by_key(updated_ms); // stable: ties keep the shuffled order
        let ties: Vec<String> = listed
            .iter()
            .filter(|r| updated_ms(r) == query.updated_since_ms)
            .map(|r| r["message_handle"].as_str().unwrap().to_owned())
            .collect();
        if ties.len() > 1 {
            state.tie_orders_seen.insert(ties);
        }
        let total = listed.len();
        let data: Vec<_> = listed
            .into_iter()
            .skip(query.offset)
            .take(query.limit)
            .map(|r| serde_json::value::to_raw_value(&r).unwrap())
            .collect();
        let has_more = query.offset + data.len() < total;
        Ok(Page { data, pagination: Pagination { has_more: Some(has_more) } })
    }
}

/// Groups of records updated at the same millisecond (each group smaller than a page: see
/// `Cursor`), a page limit, updates made between requests, and the API's shuffling seed.
/// One case: each record's time slot, the updates `(before request, record, _)`, the page
/// limit, and the shuffling seed.
type WalkCase = (Vec<u64>, Vec<(usize, usize, u64)>, usize, u64);

fn walk_cases() -> impl Strategy<Value = WalkCase> {
    (2usize..6).prop_flat_map(|page_limit| {
        prop::collection::vec(1..page_limit, 1..12).prop_flat_map(move |groups| {
            let slots: Vec<u64> = groups
                .iter()
                .enumerate()
                .flat_map(|(slot, &size)| std::iter::repeat_n(slot as u64, size))
                .collect();
            let n = slots.len();
            (
                Just(slots),
                prop::collection::vec((0usize..12, 0..n, 0u64..14), 0..5),
                Just(page_limit),
                any::<u64>(),
            )
        })
    })
}

#[test]
fn no_record_is_skipped_when_ties_are_shuffled_and_records_move_during_a_walk() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cases = std::cell::RefCell::new((0, 0, 0)); // (cases, with shuffled ties, with moves)
                                                    // 300 walks in the test command; `WALK_CASES` for a longer run.
    let cases_wanted = std::env::var("WALK_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(300);
    let mut runner = TestRunner::new(ProptestConfig::with_cases(cases_wanted));
    runner
        .run(&walk_cases(), |(slots, updates, page_limit, seed)| {
            // Times a few ms apart, all settled long ago; updates move records later still.
            let base_ms = now_ms() - 10 * MINUTE_MS;
            let records: Vec<Value> = slots
                .iter()
                .enumerate()
                .map(|(i, slot)| record(&format!("m{i}"), false, "RECEIVED", base_ms + slot))
                .collect();
            // A record updated mid-walk moves to a time of its own, past every group, and, as
            // clocks go, each update later than the one applied before it.
            let last_slot = slots.iter().max().copied().unwrap_or(0);
            let mut updates = updates;
            updates.sort_by_key(|(n, _, _)| *n);
            let updates: Vec<(usize, usize, u64)> = updates
                .into_iter()
                .enumerate()
                .map(|(k, (n, i, _))| (n, i, base_ms + last_slot + 1 + k as u64))
                .collect();
            let api = ShufflingApi {
                state: Mutex::new(ShufflingState {
                    records: records.clone(),
                    rng: fastrand::Rng::with_seed(seed),
                    updates: updates.clone(),
                    requests: 0,
                    tie_orders_seen: BTreeSet::new(),
                }),
            };
            let store = MemoryStore::default();
            let walk = Walk { page_limit, lookback_ms: 20 * MINUTE_MS, ..walk() };
            let reconciler =
                Reconciler { store: &store, api: &api, walk, dedup_ttl_seconds: 86_400 };
            let far = Instant::now() + Duration::from_secs(60);
            let summary = runtime
                .block_on(reconciler.run(far))
                .map_err(|f: Failed| TestCaseError::fail(format!("the walk failed: {f}")))?;
            // Every record as it stood when the walk began, and every later state it took:
            // each was read (a record moved mid-walk may be read in both states, never in none).
            let state = api.state.lock().unwrap();
            for original in &records {
                let key = routed(original);
                let pk = format!("{}#{}", key.0, key.1);
                let known =
                    runtime.block_on(sendblue_webhooks::dedup::DedupStore::lookup(&store, &pk));
                prop_assert!(known.unwrap().is_some(), "{} skipped: {summary:?}", pk);
            }
            let mut counts = cases.borrow_mut();
            counts.0 += 1;
            counts.1 += usize::from(!state.tie_orders_seen.is_empty());
            counts.2 += usize::from(updates.iter().any(|(n, _, _)| *n < state.requests));
            Ok(())
        })
        .unwrap();
    let (total, shuffled, moved) = *cases.borrow();
    println!("walks: {total}, with tied records listed: {shuffled}, with records moved mid-walk: {moved}");
    assert!(shuffled > total / 3, "the property must see ties: {shuffled} of {total}");
    assert!(moved > total / 4, "the property must see records move: {moved} of {total}");
}

fn contacts_api(fake: &FakeMessagesApi) -> HttpMessagesApi {
    let credentials =
        ApiCredentials { key_id: API_KEY_ID.into(), secret_key: API_SECRET_KEY.into() };
    HttpMessagesApi::of(Listing::Contacts, &fake.api_base(), credentials, 100).unwrap()
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn contacts_the_webhooks_missed_are_recovered_once_keyed_as_the_webhook_keys_them() {
    let start_ms = now_ms() - 20 * MINUTE_MS;
    let contacts: Vec<Value> =
        (0..15).map(|i| contact(&format!("ct-{i:02}"), start_ms + i * MINUTE_MS)).collect();
    let rig = Rig::start(Vec::new()).await;
    rig.fake.account().contacts = contacts.clone();
    // The first five came by webhook.
    let receiver = rig.aws.receiver(WebhookType::ContactCreated, &rig.table);
    for contact in &contacts[..5] {
        let (status, _) =
            answer(&receiver, with_body(WebhookType::ContactCreated, contact.to_string())).await;
        assert_eq!(status, 200);
    }
    let store = rig.store();
    let api = contacts_api(&rig.fake);
    let reconciler =
        Reconciler { store: &store, api: &api, walk: walk(), dedup_ttl_seconds: 86_400 };
    let summary = reconciler.run(Instant::now() + Duration::from_secs(30)).await.unwrap();
    assert_eq!((summary.recovered, summary.duplicates), (10, 5), "{summary:?}");
    assert_eq!(summary.by_type.get("contact_created"), Some(&10));
    let forwarded = rig.forwarded().await;
    let recovered: BTreeSet<&str> = forwarded
        .iter()
        .filter(|(t, _, origin)| t == "contact_created" && origin == "reconciliation")
        .map(|(_, key, _)| key.as_str())
        .collect();
    let expected: BTreeSet<String> = (5..15).map(|i| format!("ct-{i:02}")).collect();
    assert_eq!(recovered, expected.iter().map(String::as_str).collect(), "keyed by contact_id");
    // A contacts watermark of its own; the messages walk's is untouched.
    assert!(store.watermark("contacts").await.unwrap().is_some());
    assert_eq!(store.watermark(WATERMARK).await.unwrap(), None);
    // A late webhook of a recovered contact is a duplicate.
    let late = with_body(WebhookType::ContactCreated, contacts[9].to_string());
    assert_eq!(answer(&receiver, late).await.1["duplicate"], true);
}

#[tokio::test]
async fn a_contacts_list_that_ignores_the_sort_stops_the_walk_too() {
    let start_ms = now_ms() - 20 * MINUTE_MS;
    let fake = FakeMessagesApi::start(Vec::new()).await;
    fake.account().contacts =
        (0..8).map(|i| contact(&format!("c{i}"), start_ms + i * MINUTE_MS)).collect();
    fake.account().newest_first = true;
    let (store, _) = memory_forwarder();
    let api = contacts_api(&fake);
    let reconciler =
        Reconciler { store: &*store, api: &api, walk: walk(), dedup_ttl_seconds: 86_400 };
    let failed = reconciler.run(Instant::now() + Duration::from_secs(30)).await.unwrap_err();
    assert!(matches!(failed.error, ReconcileError::OrderNotKept(_)), "{failed:?}");
    assert_eq!(store.watermark("contacts").await.unwrap(), None);
}

#[tokio::test]
async fn on_a_shared_account_only_this_stacks_lines_are_walked_each_from_its_own_watermark() {
    let (ours, also_ours, theirs) = ("+15550000001", "+15550000002", "+15559999999");
    let lines = [ours, also_ours, theirs];
    let records: Vec<Value> = messages("shared", 12, 12)
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r["sendblue_number"] = json!(lines[i % 3]);
            r
        })
        .collect();
    let fake = FakeMessagesApi::start(records.clone()).await;
    let every_line = walked_lists(http_api(&fake), &[]);
    let names: Vec<&str> = every_line.iter().map(|api| api.watermark()).collect();
    assert_eq!(names, ["messages", "contacts"], "no lines named: the whole account");
    let lists = walked_lists(http_api(&fake), &[ours.into(), also_ours.into()]);
    let names: Vec<&str> = lists.iter().map(|api| api.watermark()).collect();
    assert_eq!(names, ["messages#+15550000001", "messages#+15550000002", "contacts"]);

    let (store, forwarder) = memory_forwarder();
    for api in &lists {
        let reconciler =
            Reconciler { store: &*store, api, walk: walk(), dedup_ttl_seconds: 86_400 };
        reconciler.run(Instant::now() + Duration::from_secs(30)).await.unwrap();
    }
    forwarder.sweep(0, Instant::now() + Duration::from_secs(60)).await.unwrap();
    let forwarded: BTreeSet<String> = forwarder
        .sink
        .details()
        .iter()
        .map(|d| {
            let detail: Value = serde_json::from_str(d).unwrap();
            detail["data"]["message_handle"].as_str().unwrap().to_owned()
        })
        .collect();
    let expected: BTreeSet<String> = records
        .iter()
        .filter(|r| r["sendblue_number"] != theirs)
        .map(|r| r["message_handle"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!((forwarded.len(), &forwarded), (8, &expected), "this stack's lines, none of theirs");
    for line in [ours, also_ours] {
        let name = format!("messages#{line}");
        assert!(store.watermark(&name).await.unwrap().is_some(), "{name}");
    }
    assert_eq!(store.watermark(WATERMARK).await.unwrap(), None, "no walk of every line");
}

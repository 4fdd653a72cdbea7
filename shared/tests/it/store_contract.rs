//! The dedup store contract, run against the in-memory store and against DynamoDB Local:
//! both must answer every transition of the state machine the same way.

use sendblue_testkit::Emulators;
use sendblue_webhooks::dedup::{
    event_pk, AcceptOutcome, DedupStore, EventStatus, Marked, NewEvent, Pending, PendingEntry,
    StoreError, WatermarkStore,
};
use sendblue_webhooks::dedup_key::DedupKey;
use sendblue_webhooks::events::{Origin, WebhookType};

const T0_MS: u64 = 1_800_000_000_000;
const TTL_S: u64 = 3_600;

fn key(text: &str) -> DedupKey {
    let body = format!(r#"{{"call_id": "{text}"}}"#);
    sendblue_webhooks::dedup_key::derive(WebhookType::CallLog, &body, "").unwrap()
}

fn event<'a>(
    key: &'a DedupKey,
    write_id: &'a str,
    body_hash: &'a str,
    now_ms: u64,
) -> NewEvent<'a> {
    NewEvent {
        webhook_type: WebhookType::CallLog,
        key,
        body: r#"{"call_id": "x"}"#,
        body_sha256_hex: body_hash,
        received_at_ms: now_ms,
        request_id: "r-1",
        origin: Origin::Webhook,
        write_id,
    }
}

/// The pending event of `pk`, read as the forwarder reads it.
async fn pending(store: &impl DedupStore, pk: &str) -> Pending {
    store.pending(&[pk]).await.unwrap().remove(0)
}

/// Every case on a fresh key of `store`.
async fn contract(store: &impl DedupStore) {
    let fresh = || key(&uuid::Uuid::new_v4().to_string());

    // New key: accepted, pending, whole; a second delivery is a duplicate, body compared.
    let k = fresh();
    let pk = event_pk(WebhookType::CallLog, &k);
    assert_eq!(store.accept(&event(&k, "a", "h1", T0_MS)).await.unwrap(), AcceptOutcome::Accepted);
    assert_eq!(
        store.accept(&event(&k, "b", "h1", T0_MS + 1)).await.unwrap(),
        AcceptOutcome::Duplicate { same_body: true },
        "a pending event is safe: a duplicate"
    );
    assert_eq!(
        store.accept(&event(&k, "b", "h2", T0_MS + 1)).await.unwrap(),
        AcceptOutcome::Duplicate { same_body: false }
    );
    // A retry of our own applied write (its answer lost) meets it and knows it.
    assert_eq!(
        store.accept(&event(&k, "a", "h1", T0_MS + 2)).await.unwrap(),
        AcceptOutcome::Accepted
    );
    let Pending::Event(stored) = pending(store, &pk).await else { panic!("pending") };
    assert_eq!(
        (stored.write_id.as_str(), stored.dedup_key.as_str(), stored.received_at_ms, stored.origin),
        ("a", k.as_str(), T0_MS, Origin::Webhook)
    );
    assert_eq!(stored.body, r#"{"call_id": "x"}"#);
    // Pending never expires: long past any window it is still a duplicate.
    let far_ms = T0_MS + 10 * TTL_S * 1000;
    assert!(matches!(
        store.accept(&event(&k, "c", "h1", far_ms)).await.unwrap(),
        AcceptOutcome::Duplicate { .. }
    ));

    // Marked: forwarded, its window set, gone from the pending reads; a second mark (a race,
    // or a retry) finds it marked.
    assert_eq!(store.mark_forwarded(&stored, T0_MS / 1000 + TTL_S).await.unwrap(), Marked::Now);
    assert_eq!(store.mark_forwarded(&stored, T0_MS / 1000 + TTL_S).await.unwrap(), Marked::Already);
    assert_eq!(pending(store, &pk).await, Pending::Settled);
    let item = store.lookup(&pk).await.unwrap().unwrap();
    assert_eq!(
        (item.status, item.expires_at_s),
        (EventStatus::Forwarded, Some(T0_MS / 1000 + TTL_S))
    );
    // A duplicate within the window; past it, a new event.
    let in_window_ms = T0_MS + TTL_S * 1000;
    assert!(matches!(
        store.accept(&event(&k, "d", "h1", in_window_ms)).await.unwrap(),
        AcceptOutcome::Duplicate { .. }
    ));
    let expired_ms = T0_MS + (TTL_S + 2) * 1000;
    assert_eq!(
        store.accept(&event(&k, "e", "h1", expired_ms)).await.unwrap(),
        AcceptOutcome::Accepted
    );
    // The stale mark of the first write cannot mark the second one.
    assert_eq!(store.mark_forwarded(&stored, 1).await.unwrap(), Marked::Already);
    assert!(matches!(pending(store, &pk).await, Pending::Event(e) if e.write_id == "e"));

    // No item: settled, nothing to mark, nothing written.
    let k = fresh();
    let pk = event_pk(WebhookType::CallLog, &k);
    assert_eq!(pending(store, &pk).await, Pending::Settled);
    assert_eq!(store.lookup(&pk).await.unwrap(), None);

    // The pending index: this type's events before the cutoff, oldest first, page by page.
    let keys: Vec<DedupKey> = (0..5).map(|_| fresh()).collect();
    let base_ms = T0_MS + 1_000_000_000; // after every other item of this contract
    for (i, k) in keys.iter().enumerate().rev() {
        store.accept(&event(k, "w", "h", base_ms + i as u64)).await.unwrap();
    }
    let wanted: Vec<String> = keys.iter().map(|k| event_pk(WebhookType::CallLog, k)).collect();
    let (mut seen, mut after): (Vec<String>, Option<PendingEntry>) = (Vec::new(), None);
    loop {
        let page =
            store.pending_page(WebhookType::CallLog, base_ms + 4, after.as_ref(), 2).await.unwrap();
        assert!(page.entries.len() <= 2);
        seen.extend(page.entries.iter().map(|e| e.pk.clone()).filter(|pk| wanted.contains(pk)));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, wanted[..4], "before the cutoff, oldest first");
    let other = store.pending_page(WebhookType::Receive, u64::MAX / 2, None, 100).await.unwrap();
    assert!(other.entries.iter().all(|e| !wanted.contains(&e.pk)), "by type");
}

/// Reconciliation's state: the watermark, the record a walk keeps failing on, the lease.
async fn walk_state_contract(store: &impl WatermarkStore) {
    let walk = uuid::Uuid::new_v4().simple().to_string();
    // A failure noted before any watermark does not keep the first watermark from being saved.
    assert_eq!(store.note_failure(&walk, "r1").await.unwrap(), 1);
    assert_eq!(store.note_failure(&walk, "r1").await.unwrap(), 2, "the same record again");
    assert_eq!(store.watermark(&walk).await.unwrap(), None);
    store.advance_watermark(&walk, 1_000).await.unwrap();
    assert_eq!(store.watermark(&walk).await.unwrap(), Some(1_000));
    store.advance_watermark(&walk, 900).await.unwrap();
    assert_eq!(store.watermark(&walk).await.unwrap(), Some(1_000), "never backwards");
    assert_eq!(store.note_failure(&walk, "r1").await.unwrap(), 3, "kept beside the watermark");
    assert_eq!(store.note_failure(&walk, "r2").await.unwrap(), 1, "another record: anew");
    store.advance_watermark(&walk, 2_000).await.unwrap();
    assert_eq!(store.watermark(&walk).await.unwrap(), Some(2_000));

    let lease = uuid::Uuid::new_v4().simple().to_string();
    assert!(store.try_lease(&lease, "a", T0_MS + 100, T0_MS).await.unwrap(), "free: taken");
    assert!(!store.try_lease(&lease, "b", T0_MS + 200, T0_MS + 50).await.unwrap(), "held");
    assert!(store.try_lease(&lease, "a", T0_MS + 300, T0_MS + 60).await.unwrap(), "renewed");
    assert!(!store.try_lease(&lease, "b", T0_MS + 400, T0_MS + 200).await.unwrap(), "still held");
    store.release_lease(&lease, "b").await.unwrap();
    assert!(!store.try_lease(&lease, "b", T0_MS + 400, T0_MS + 200).await.unwrap(), "not b's");
    assert!(store.try_lease(&lease, "b", T0_MS + 900, T0_MS + 301).await.unwrap(), "ended: b's");
    store.release_lease(&lease, "a").await.unwrap();
    assert!(!store.try_lease(&lease, "c", T0_MS + 990, T0_MS + 400).await.unwrap(), "a's gone");
    store.release_lease(&lease, "b").await.unwrap();
    assert!(store.try_lease(&lease, "c", T0_MS + 990, T0_MS + 400).await.unwrap(), "released");
}

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    contract(&sendblue_webhooks::dedup::MemoryStore::default()).await;
    walk_state_contract(&sendblue_webhooks::dedup::MemoryStore::default()).await;
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn dynamodb_store_keeps_the_contract() {
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    contract(&aws.store(&table)).await;
    walk_state_contract(&aws.store(&table)).await;
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn dynamodb_store_writes_the_documented_item() {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let store = aws.store(&table);
    let k = key("c-1");
    store.accept(&event(&k, "w-1", "abc", T0_MS)).await.unwrap();
    let accepted = aws.scan(&table).await;
    let Pending::Event(stored) = pending(&store, "call_log#c-1").await else { panic!() };
    store.mark_forwarded(&stored, 1_800_003_600).await.unwrap();
    let mut forwarded = aws.scan(&table).await;
    // Unique to the mark: 32 hex digits, different every time.
    let marked_by = forwarded[0].remove("marked_by");
    assert!(
        matches!(&marked_by, Some(S(id)) if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())),
        "{marked_by:?}"
    );
    // The item as the docs document it, names and types written out here, not read from the
    // writer's constants.
    let common = [
        ("pk", S("call_log#c-1".into())),
        ("write_id", S("w-1".into())),
        ("body_sha256", S("abc".into())),
        ("webhook_type", S("call_log".into())),
        ("dedup_key", S("c-1".into())),
        ("received_at_ms", N("1800000000000".into())),
        ("request_id", S("r-1".into())),
        ("origin", S("webhook".into())),
    ];
    let item = |extra: &[(&str, aws_sdk_dynamodb::types::AttributeValue)]| {
        common
            .iter()
            .chain(extra)
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<std::collections::HashMap<_, _>>()
    };
    assert_eq!(
        accepted,
        [item(&[
            ("status", S("PENDING".into())),
            ("body", S(r#"{"call_id": "x"}"#.into())),
            ("pending_type", S("call_log".into())),
        ])]
    );
    assert_eq!(
        forwarded,
        [item(&[("status", S("FORWARDED".into())), ("expires_at", N("1800003600".into()))])],
        "the mark drops the body and leaves the index"
    );
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn dynamodb_store_reports_an_unreachable_table_as_unavailable() {
    let aws = Emulators::connect().await;
    let store = aws.store("no-such-table");
    let err = store.accept(&event(&key("m"), "a", "h", T0_MS)).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
}

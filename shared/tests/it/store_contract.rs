//! The dedup store contract, run against the in-memory store and against DynamoDB Local:
//! both must answer every transition of the state machine the same way.

use sendblue_testkit::Emulators;
use sendblue_webhooks::dedup::{Claim, ClaimOutcome, DedupStore, StoreError};

const T0_MS: u64 = 1_800_000_000_000;
const LEASE_MS: u64 = 10_000;
const TTL_S: u64 = 3_600;

fn claim<'a>(pk: &'a str, owner: &'a str, body: &'a str, now_ms: u64) -> Claim<'a> {
    Claim {
        pk,
        owner_token: owner,
        body_sha256_hex: body,
        now_ms,
        lease_until_ms: now_ms + LEASE_MS,
        expires_at_s: now_ms / 1000 + TTL_S,
    }
}

/// Every case on a fresh key of `store`.
async fn contract(store: &impl DedupStore) {
    let fresh = || uuid::Uuid::new_v4().to_string();

    // New key: claimed; during the lease: in progress; completed: duplicate, body compared.
    let pk = fresh();
    assert_eq!(store.claim(&claim(&pk, "a", "h1", T0_MS)).await.unwrap(), ClaimOutcome::Claimed);
    assert_eq!(
        store.claim(&claim(&pk, "b", "h1", T0_MS + 1)).await.unwrap(),
        ClaimOutcome::InProgress { lease_until_ms: T0_MS + LEASE_MS, same_body: true }
    );
    store.complete(&pk, "a").await.unwrap();
    assert_eq!(
        store.claim(&claim(&pk, "b", "h1", T0_MS + 2)).await.unwrap(),
        ClaimOutcome::Completed { same_body: true }
    );
    assert_eq!(
        store.claim(&claim(&pk, "b", "h2", T0_MS + 2)).await.unwrap(),
        ClaimOutcome::Completed { same_body: false }
    );
    // Completed stays a duplicate after any lease, until the window ends...
    let late_ms = T0_MS + TTL_S * 1000;
    assert!(matches!(
        store.claim(&claim(&pk, "b", "h1", late_ms)).await.unwrap(),
        ClaimOutcome::Completed { .. }
    ));
    // ...and past it, an item TTL has not deleted yet counts as absent.
    let expired_ms = T0_MS + (TTL_S + 2) * 1000;
    assert_eq!(
        store.claim(&claim(&pk, "c", "h1", expired_ms)).await.unwrap(),
        ClaimOutcome::Claimed
    );

    // A lease that ended (the holder crashed) is taken over; the old holder can then neither
    // complete nor release the new owner's claim.
    let pk = fresh();
    store.claim(&claim(&pk, "crashed", "h", T0_MS)).await.unwrap();
    let after_lease_ms = T0_MS + LEASE_MS + 1;
    assert_eq!(
        store.claim(&claim(&pk, "b", "h", after_lease_ms)).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert!(matches!(store.complete(&pk, "crashed").await, Err(StoreError::NotOwner)));
    assert!(matches!(store.release(&pk, "crashed").await, Err(StoreError::NotOwner)));
    assert!(matches!(
        store.claim(&claim(&pk, "c", "h", after_lease_ms + 1)).await.unwrap(),
        ClaimOutcome::InProgress { .. }
    ));

    // Release by the owner removes the claim: the retry starts afresh.
    let pk = fresh();
    store.claim(&claim(&pk, "a", "h", T0_MS)).await.unwrap();
    store.release(&pk, "a").await.unwrap();
    assert_eq!(store.claim(&claim(&pk, "b", "h", T0_MS + 1)).await.unwrap(), ClaimOutcome::Claimed);

    // Nothing to complete on a key never claimed; releasing it finds nothing in the way.
    let pk = fresh();
    assert!(matches!(store.complete(&pk, "a").await, Err(StoreError::NotOwner)));
    store.release(&pk, "a").await.unwrap();
    assert!(matches!(store.complete(&pk, "a").await, Err(StoreError::NotOwner)), "wrote nothing");

    // Each transition repeated after it was applied (the SDK retrying a write whose answer was
    // lost) succeeds again: a claim meeting its own token, a second completion, a second release.
    let pk = fresh();
    assert_eq!(store.claim(&claim(&pk, "a", "h", T0_MS)).await.unwrap(), ClaimOutcome::Claimed);
    assert_eq!(
        store.claim(&claim(&pk, "a", "h", T0_MS + 5)).await.unwrap(),
        ClaimOutcome::Claimed,
        "our own claim, met again"
    );
    store.complete(&pk, "a").await.unwrap();
    store.complete(&pk, "a").await.unwrap();
    assert_eq!(
        store.claim(&claim(&pk, "b", "h", T0_MS + 6)).await.unwrap(),
        ClaimOutcome::Completed { same_body: true }
    );
    let pk = fresh();
    store.claim(&claim(&pk, "a", "h", T0_MS)).await.unwrap();
    store.release(&pk, "a").await.unwrap();
    store.release(&pk, "a").await.unwrap();
    assert_eq!(store.claim(&claim(&pk, "b", "h", T0_MS + 1)).await.unwrap(), ClaimOutcome::Claimed);
}

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    contract(&sendblue_webhooks::dedup::MemoryStore::default()).await;
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn dynamodb_store_keeps_the_contract() {
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    contract(&aws.store(&table)).await;
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn dynamodb_store_writes_the_documented_item() {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let store = aws.store(&table);
    store.claim(&claim("receive#m-1", "owner", "abc", T0_MS)).await.unwrap();
    let claimed = aws.scan(&table).await;
    store.complete("receive#m-1", "owner").await.unwrap();
    let completed = aws.scan(&table).await;
    // The item as the README documents it, names and types written out here, not read from
    // the writer's constants.
    let item = |status: &str| {
        std::collections::HashMap::from([
            ("pk".to_owned(), S("receive#m-1".into())),
            ("status".to_owned(), S(status.into())),
            ("lease_until_ms".to_owned(), N("1800000010000".into())),
            ("expires_at".to_owned(), N("1800003600".into())),
            ("body_sha256".to_owned(), S("abc".into())),
            ("owner_token".to_owned(), S("owner".into())),
        ])
    };
    assert_eq!(claimed, [item("IN_PROGRESS")]);
    assert_eq!(completed, [item("COMPLETED")]);
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn dynamodb_store_reports_an_unreachable_table_as_unavailable() {
    let aws = Emulators::connect().await;
    let store = aws.store("no-such-table");
    let err = store.claim(&claim("receive#m", "a", "h", T0_MS)).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
}

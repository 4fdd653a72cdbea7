//! CPU per event of the pipeline itself, with in-memory backends (no network): what a Lambda
//! invocation spends besides waiting on DynamoDB and EventBridge. `cargo bench -p sendblue-webhooks`.
//!
//! - `verify`, `derive_key`, `envelope`: the steps alone, typical and large (200 KB) bodies;
//! - `new_event/<type>`: a whole request through `WebhookPipeline::handle` (log line and answer
//!   included, logs formatted as in Lambda and written to a sink), each iteration a new key;
//! - `duplicate/<type>`: the same, for a key already forwarded.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use sendblue_testkit::*;
use sendblue_webhooks::app::{local_pipeline, LocalPipeline};
use sendblue_webhooks::bus::JsonLinesSink;
use sendblue_webhooks::config::Backend;
use sendblue_webhooks::envelope::{self, Metadata, Origin};
use sendblue_webhooks::verify::AcceptedSecrets;
use sendblue_webhooks::{dedup_key, logging, WebhookType};
use serde_json::json;
use tracing_subscriber::EnvFilter;

fn large_receive_body() -> String {
    body_with(WebhookType::Receive, &[("content", json!("x".repeat(200_000)))])
}

fn steps(c: &mut Criterion) {
    let secrets =
        AcceptedSecrets::from_list("old-secret-0123456789,new-secret-0123456789").unwrap();
    c.bench_function("verify/two_secrets", |b| {
        b.iter(|| secrets.accepts(black_box(b"new-secret-0123456789")))
    });

    let typical = fixture_body(WebhookType::Receive);
    let large = large_receive_body();
    for (name, body) in [("typical", &typical), ("large", &large)] {
        c.bench_function(&format!("derive_key/receive_{name}"), |b| {
            b.iter(|| dedup_key::derive(WebhookType::Receive, black_box(body), "hash").unwrap())
        });
        let metadata = Metadata {
            webhook_type: WebhookType::Receive,
            dedup_key: "99DCC379-DD76-4712-BA65-11EFB33B8CD6",
            received_at: "2026-11-26T18:04:00.079Z",
            request_id: "JKJaXmPLvHcESHA=",
            origin: Origin::Webhook,
        };
        c.bench_function(&format!("envelope/receive_{name}"), |b| {
            b.iter(|| envelope::detail(&metadata, black_box(body)))
        });
    }
}

/// A local receiver whose events go nowhere (a `Vec` would grow with every iteration).
fn receiver(webhook_type: WebhookType) -> LocalPipeline<JsonLinesSink<std::io::Sink>> {
    let sink = JsonLinesSink::new(std::io::sink());
    local_pipeline(webhook_type, &config(webhook_type, Backend::Local), sink)
}

/// A body of `webhook_type` whose key is new for every `n`.
fn unique_body(webhook_type: WebhookType, n: usize) -> String {
    let field = match webhook_type {
        WebhookType::Receive | WebhookType::Outbound | WebhookType::StatusCallback => {
            "message_handle"
        }
        WebhookType::TypingIndicator => "timestamp",
        WebhookType::CallLog => "call_id",
        WebhookType::ContactCreated => "contact_id",
        WebhookType::LineBlocked | WebhookType::LineAssigned => "sequence",
    };
    body_with(webhook_type, &[(field, json!(format!("bench-{n}")))])
}

fn requests(c: &mut Criterion) {
    let _logs = tracing::subscriber::set_default(logging::subscriber(
        std::io::sink,
        EnvFilter::new(logging::DEFAULT_FILTER),
    ));
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for t in WebhookType::ALL {
        let receiver = receiver(t);
        let counter = AtomicUsize::new(0);
        c.bench_function(&format!("new_event/{}", t.sendblue_name()), |b| {
            b.to_async(&runtime).iter_batched(
                || with_body(t, unique_body(t, counter.fetch_add(1, Ordering::Relaxed))),
                |request| receiver.handle(request),
                BatchSize::SmallInput,
            )
        });
        let duplicate = fixture(t.binary_name());
        runtime.block_on(receiver.handle(fixture(t.binary_name())));
        c.bench_function(&format!("duplicate/{}", t.sendblue_name()), |b| {
            b.to_async(&runtime).iter_batched(
                || duplicate.clone(),
                |request| receiver.handle(request),
                BatchSize::SmallInput,
            )
        });
    }
    let receiver = receiver(WebhookType::Receive);
    let counter = AtomicUsize::new(0);
    let large = large_receive_body();
    c.bench_function("new_event/receive_large", |b| {
        b.to_async(&runtime).iter_batched(
            || {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                with_body(WebhookType::Receive, large.replacen("99DCC379", &format!("b{n}"), 1))
            },
            |request| receiver.handle(request),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, steps, requests);
criterion_main!(benches);

//! The rig the door, stream and fault tests share: DynamoDB Local and moto reached directly (to
//! set up and read back) and through a fault proxy each (for the code under test), one table
//! made from template.yaml, one bus whose rule copies every event to a queue.

use std::time::Duration;

use sendblue_testkit::proxy::FaultProxy;
use sendblue_testkit::stream_pump::{MappingSettings, PumpReport, StreamPump};
use sendblue_testkit::*;
use sendblue_webhooks::dedup::EventStatus;
use sendblue_webhooks::forward::sweep::SweepReport;
use sendblue_webhooks::WebhookType;
use serde_json::json;
use tokio::time::Instant;

pub struct Rig {
    pub direct: Emulators,
    pub via_proxies: Emulators,
    pub dynamodb_proxy: FaultProxy,
    pub eventbridge_proxy: FaultProxy,
    pub table: String,
    pub bus: String,
    pub queue: String,
}

impl Rig {
    pub async fn start() -> Self {
        let dynamodb_proxy = FaultProxy::start(&dynamodb_endpoint()).await;
        let eventbridge_proxy = FaultProxy::start(&moto_endpoint()).await;
        let direct = Emulators::connect().await;
        let via_proxies =
            Emulators::connect_to(&dynamodb_proxy.endpoint, &eventbridge_proxy.endpoint).await;
        let table = direct.create_table().await;
        let (bus, queue) = direct.create_bus().await;
        Self { direct, via_proxies, dynamodb_proxy, eventbridge_proxy, table, bus, queue }
    }

    /// One delivery through the proxies; the status code.
    pub async fn deliver(&self, t: WebhookType, body: &str) -> u16 {
        answer(&self.via_proxies.receiver(t, &self.table), with_body(t, body)).await.0
    }

    /// One sweep of everything pending, through the proxies.
    pub async fn sweep(&self) -> SweepReport {
        let far = Instant::now() + Duration::from_secs(600);
        self.via_proxies.forwarder(&self.table, &self.bus).sweep(0, far).await.unwrap()
    }

    pub async fn status(&self, pk: &str) -> Option<EventStatus> {
        self.direct.item(&self.table, pk).await.map(|item| item.status)
    }

    /// The event source mapping of the table's stream, from its trim horizon.
    pub async fn stream(&self, settings: MappingSettings) -> StreamPump {
        self.direct.stream_pump(&self.table, settings).await
    }

    /// One pass of the stream through the `forward` handler, whose calls go through the proxies.
    pub async fn pump(&self, stream: &mut StreamPump) -> PumpReport {
        let forwarder = self.via_proxies.forwarder(&self.table, &self.bus);
        stream.pump(|payload| invoke_forward(&forwarder, payload)).await
    }

    /// Passes of the stream until one finds nothing to hand over.
    pub async fn pump_until_idle(&self, stream: &mut StreamPump) -> PumpReport {
        let forwarder = self.via_proxies.forwarder(&self.table, &self.bus);
        stream.pump_until_idle(10, |payload| invoke_forward(&forwarder, payload)).await
    }

    /// The dedup keys on the bus so far, in the order the queue received them.
    pub async fn keys_on_the_bus(&self) -> Vec<String> {
        let delivered = self.direct.drain(&self.queue).await;
        delivered
            .iter()
            .map(|e| e.detail["metadata"]["dedup_key"].as_str().unwrap().into())
            .collect()
    }
}

pub fn receive_body(handle: &str) -> String {
    body_with(WebhookType::Receive, &[("message_handle", json!(handle))])
}

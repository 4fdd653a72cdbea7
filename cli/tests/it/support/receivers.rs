//! HTTP servers on loopback for `send` and `rotate-secret` to talk to: the real receivers (the
//! shared pipeline on in-memory backends, one per type, at the deployed paths), and a scripted
//! receiver that fails, hangs or succeeds on demand.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use lambda_http::RequestExt;
use sendblue_webhooks::app::{local_pipeline, LocalPipeline};
use sendblue_webhooks::bus::JsonLinesSink;
use sendblue_webhooks::config::Config;
use sendblue_webhooks::verify::TOKEN_PATH_PARAMETER;
use sendblue_webhooks::WebhookType;
use serde_json::Value;

type LocalReceiver = LocalPipeline<JsonLinesSink<Vec<u8>>>;

/// The eight receivers, as `scripts/local.sh` serves them.
#[derive(Clone)]
pub struct Receivers {
    pub address: SocketAddr,
    by_binary: Arc<HashMap<&'static str, LocalReceiver>>,
}

impl Receivers {
    /// Receivers accepting `secrets` (comma-separated) and the callback `tokens`.
    pub async fn start(secrets: &str, tokens: &str) -> Self {
        Self::start_split(secrets, secrets, tokens).await
    }

    /// Receivers as a stack deployed with its own `ContactCreatedSecrets` runs them.
    pub async fn start_split(secrets: &str, contact_created_secrets: &str, tokens: &str) -> Self {
        let by_binary: HashMap<_, _> = WebhookType::ALL
            .into_iter()
            .map(|t| {
                let secrets = match t {
                    WebhookType::ContactCreated => contact_created_secrets,
                    _ => secrets,
                };
                let config =
                    Config::from_lookup(sendblue_webhooks::verify::guard(t), |name| match name {
                        "RECEIVER_MODE" => Some("local".into()),
                        "SENDBLUE_WEBHOOK_SECRETS" => Some(secrets.into()),
                        "SENDBLUE_CALLBACK_TOKENS" => Some(tokens.into()),
                        _ => None,
                    })
                    .unwrap();
                let receiver = local_pipeline(t, &config, JsonLinesSink::new(Vec::new()));
                (t.binary_name(), receiver)
            })
            .collect();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receivers =
            Self { address: listener.local_addr().unwrap(), by_binary: Arc::new(by_binary) };
        let app = Router::new().fallback(serve).with_state(receivers.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receivers
    }

    pub fn url_base(&self) -> String {
        format!("http://{}/sendblue", self.address)
    }

    /// Every event the receiver of `webhook_type` forwarded.
    pub fn forwarded(&self, webhook_type: WebhookType) -> Vec<Value> {
        self.by_binary[webhook_type.binary_name()].handoff().sink.inspect(|out| {
            String::from_utf8_lossy(out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
        })
    }
}

/// `/sendblue/<function>` or `/sendblue/status-callback/<token>`, handed to the pipeline as
/// API Gateway would hand it.
async fn serve(
    State(receivers): State<Receivers>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut segments = uri.path().strip_prefix("/sendblue/").unwrap_or("").splitn(2, '/');
    let binary = segments.next().unwrap_or("");
    let Some(receiver) = receivers.by_binary.get(binary) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut request = lambda_http::Request::new(lambda_http::Body::from(body.to_vec()));
    *request.method_mut() = method;
    *request.headers_mut() = headers;
    if let Some(token) = segments.next() {
        let parameters = HashMap::from([(TOKEN_PATH_PARAMETER.to_owned(), token.to_owned())]);
        request = request.with_path_parameters(parameters);
    }
    let response = receiver.handle(request).await;
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, body.to_vec()).into_response()
}

/// What the scripted receiver does with one request.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    Answer(u16),
    /// Never answers (until the client gives up).
    Hang,
}

/// Answers each request with the next scripted behaviour, then 200; records what it was sent.
#[derive(Clone)]
pub struct ScriptedReceiver {
    pub address: SocketAddr,
    script: Arc<Mutex<VecDeque<Behaviour>>>,
    pub received: Arc<Mutex<Vec<(HeaderMap, String)>>>,
}

impl ScriptedReceiver {
    pub async fn start(script: &[Behaviour]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Self {
            address: listener.local_addr().unwrap(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            received: Arc::default(),
        };
        let app = Router::new().fallback(scripted).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    pub fn url(&self) -> String {
        format!("http://{}/sendblue/receive", self.address)
    }

    pub fn received(&self) -> Vec<(HeaderMap, String)> {
        self.received.lock().unwrap().clone()
    }
}

async fn scripted(
    State(receiver): State<ScriptedReceiver>,
    headers: HeaderMap,
    body: String,
) -> Response {
    receiver.received.lock().unwrap().push((headers, body));
    let next = receiver.script.lock().unwrap().pop_front();
    match next {
        Some(Behaviour::Answer(status)) => {
            (StatusCode::from_u16(status).unwrap(), r#"{"status":"ERROR","message":"scripted"}"#)
                .into_response()
        }
        Some(Behaviour::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        None => (StatusCode::OK, r#"{"status":"OK"}"#).into_response(),
    }
}

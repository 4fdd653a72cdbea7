//! A fault-injecting TCP proxy on loopback, put between the SDK clients and an emulator:
//! faults happen on real sockets, not in a mock of the SDK.
//!
//! Two kinds of fault: one applied to every connection ([`Fault`]), and one scripted for the
//! next request of one operation ([`Step`]), which reads HTTP requests and answers one by one
//! so that it can, for example, let a write reach the server and then lose its answer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward bytes both ways.
    Pass,
    /// Accept, then close at once: the client sees the connection reset or closed.
    Refuse,
    /// Hold every new connection this long before forwarding (past the SDK's timeouts, a hang).
    Delay(Duration),
    /// Answer every request with this HTTP status and JSON body instead of the server: a
    /// protocol-level fault (a PutEvents entry failure, DynamoDB throttling).
    Answer(u16, &'static str),
}

/// What happens to the next request of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The server applies the request; the client gets this status and JSON body instead of
    /// the server's answer (an answer lost after the write: the SDK retries a 500).
    ApplyThenAnswer(u16, &'static str),
    /// The server never sees the request; the client gets this status and JSON body.
    Answer(u16, &'static str),
    /// The server applies the request, and this top-level member is removed from its JSON answer.
    ApplyThenStrip(&'static str),
}

/// The `x-amz-target` operation a scripted step waits for (`PutItem`, `PutEvents`, ...).
type Script = Arc<Mutex<VecDeque<(&'static str, Step)>>>;

pub struct FaultProxy {
    pub endpoint: String,
    fault: Arc<Mutex<Fault>>,
    script: Script,
    /// Bumped to cut every open connection (pooled keep-alive connections included).
    cut: watch::Sender<u64>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:port`) on a free loopback port.
    pub async fn start(upstream: &str) -> Self {
        let upstream: SocketAddr =
            upstream.trim_start_matches("http://").parse().expect("upstream is host:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let fault = Arc::new(Mutex::new(Fault::Pass));
        let script = Script::default();
        let (cut, _) = watch::channel(0u64);
        let (accept_fault, accept_script, accept_cut) =
            (Arc::clone(&fault), Arc::clone(&script), cut.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let fault = *accept_fault.lock().unwrap();
                let cut = accept_cut.subscribe();
                if fault == Fault::Pass && !accept_script.lock().unwrap().is_empty() {
                    tokio::spawn(relay_scripted(client, upstream, Arc::clone(&accept_script)));
                } else {
                    tokio::spawn(relay(client, upstream, fault, cut));
                }
            }
        });
        Self { endpoint, fault, script, cut }
    }

    /// Applies `step` to the next request whose `x-amz-target` ends with `.{operation}`, once.
    /// Steps queue in order; open connections are cut so that the next request sees them.
    pub fn script(&self, operation: &'static str, step: Step) {
        self.script.lock().unwrap().push_back((operation, step));
        self.cut.send_modify(|generation| *generation += 1);
    }

    /// How many scripted steps have not met their request yet.
    pub fn pending_steps(&self) -> usize {
        self.script.lock().unwrap().len()
    }

    /// Applies `fault` to new connections and cuts the open ones, so it takes effect at once.
    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
        self.cut.send_modify(|generation| *generation += 1);
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    fault: Fault,
    mut cut: watch::Receiver<u64>,
) {
    match fault {
        Fault::Refuse => return,
        Fault::Answer(status, body) => return answer(client, status, body).await,
        Fault::Delay(delay) => tokio::time::sleep(delay).await,
        Fault::Pass => {}
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.changed() => {}
    }
}

/// Reads one HTTP/1.1 request and answers it.
async fn answer(mut client: TcpStream, status: u16, body: &str) {
    if read_message(&mut client).await.is_some() {
        send_injected(&mut client, status, body).await;
    }
}

async fn send_injected(client: &mut TcpStream, status: u16, body: &str) {
    let response = format!(
        "HTTP/1.1 {status} Injected\r\ncontent-type: application/x-amz-json-1.1\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
}

/// One HTTP/1.1 message, head and body.
struct Message {
    head: String,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    fn bytes(&self) -> Vec<u8> {
        let mut bytes = self.head.clone().into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Reads one message: the head, then `content-length` bytes, a chunked body, or (for an
/// answer with neither) everything until the peer closes.
async fn read_message(stream: &mut TcpStream) -> Option<Message> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let read = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut body = buffer.split_off(head_end);
    let message = Message { head, body: Vec::new() };
    let is_request = !message.head.starts_with("HTTP/");
    let length = message.header("content-length").and_then(|v| v.parse::<usize>().ok());
    let chunked = message.header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    loop {
        let complete = match (length, chunked) {
            (Some(length), _) => body.len() >= length,
            (None, true) => body.ends_with(b"0\r\n\r\n"),
            (None, false) => is_request,
        };
        if complete {
            break;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) if length.is_none() && !chunked => break,
            Ok(0) | Err(_) => return None,
            Ok(read) => body.extend_from_slice(&chunk[..read]),
        }
    }
    Some(Message { body, ..message })
}

/// Relays request by request, applying the scripted step to the request it names.
async fn relay_scripted(mut client: TcpStream, upstream: SocketAddr, script: Script) {
    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
    while let Some(request) = read_message(&mut client).await {
        let target = request.header("x-amz-target").unwrap_or_default().to_owned();
        let step = {
            let mut script = script.lock().unwrap();
            let position =
                script.iter().position(|(operation, _)| target.ends_with(&format!(".{operation}")));
            position.and_then(|i| script.remove(i)).map(|(_, step)| step)
        };
        if let Some(Step::Answer(status, body)) = step {
            return send_injected(&mut client, status, body).await;
        }
        if server.write_all(&request.bytes()).await.is_err() {
            return;
        }
        let Some(mut response) = read_message(&mut server).await else { return };
        match step {
            Some(Step::ApplyThenAnswer(status, body)) => {
                return send_injected(&mut client, status, body).await
            }
            Some(Step::ApplyThenStrip(member)) => response = strip_member(response, member),
            _ => {}
        }
        if client.write_all(&response.bytes()).await.is_err() {
            return;
        }
    }
}

/// The answer without one top-level member of its JSON body (content-length adjusted).
fn strip_member(response: Message, member: &str) -> Message {
    let mut json: serde_json::Value =
        serde_json::from_slice(&response.body).expect("the emulator answers JSON");
    json.as_object_mut().expect("a JSON object").remove(member);
    let body = serde_json::to_vec(&json).unwrap();
    let lines = response
        .head
        .trim_end()
        .lines()
        .map(|line| match line.split_once(':') {
            Some((name, _)) if name.trim().eq_ignore_ascii_case("content-length") => {
                format!("{name}: {}", body.len())
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>();
    Message { head: format!("{}\r\n\r\n", lines.join("\r\n")), body }
}

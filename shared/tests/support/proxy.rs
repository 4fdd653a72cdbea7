//! A fault-injecting TCP proxy on loopback, put between the SDK clients and an emulator:
//! faults happen on real sockets, not in a mock of the SDK.

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

pub struct FaultProxy {
    pub endpoint: String,
    fault: Arc<Mutex<Fault>>,
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
        let (cut, _) = watch::channel(0u64);
        let (accept_fault, accept_cut) = (Arc::clone(&fault), cut.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let fault = *accept_fault.lock().unwrap();
                tokio::spawn(relay(client, upstream, fault, accept_cut.subscribe()));
            }
        });
        Self { endpoint, fault, cut }
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

/// Reads one HTTP/1.1 request (headers, then `content-length` bytes) and answers it.
async fn answer(mut client: TcpStream, status: u16, body: &str) {
    let mut request = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let Ok(read @ 1..) = client.read(&mut chunk).await else { return };
        request.extend_from_slice(&chunk[..read]);
        let Some(headers_end) = request.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let headers = String::from_utf8_lossy(&request[..headers_end]).to_ascii_lowercase();
        let content_length: usize = headers
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(0, |value| value.trim().parse().unwrap_or(0));
        if request.len() >= headers_end + 4 + content_length {
            break;
        }
    }
    let response = format!(
        "HTTP/1.1 {status} Injected\r\ncontent-type: application/x-amz-json-1.1\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
}

//! A fault-injecting TCP proxy on loopback, put between the SDK clients and an emulator:
//! faults happen on real sockets, not in a mock of the SDK.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
        Fault::Delay(delay) => tokio::time::sleep(delay).await,
        Fault::Pass => {}
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.changed() => {}
    }
}

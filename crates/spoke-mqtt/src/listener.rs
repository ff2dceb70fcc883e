//! TLS accept loops: the MQTT/TLS port of the hub and of the edge hub, and the building block
//! of their HTTPS ports.
//!
//! Each accepted TCP stream gets `TCP_NODELAY`, a TLS handshake bounded by
//! [`HANDSHAKE_TIMEOUT`], and its own task. A failed handshake is logged at debug level and
//! affects nobody else. When `shutdown` becomes `true` the loops stop accepting and every
//! connection they started is closed (its handler is dropped), so that nothing of a stopped
//! server keeps serving.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::server::{Hooks, PeerInfo, Server, serve_connection};

/// Longest time a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn accept_tls(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
) -> Option<(TlsStream<TcpStream>, PeerInfo)> {
    let addr = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(?addr, error = %e, "TLS handshake failed");
            return None;
        }
        Err(_) => {
            tracing::debug!(?addr, "TLS handshake timed out");
            return None;
        }
    };
    let client_certificates = tls
        .get_ref()
        .1
        .peer_certificates()
        .map(|certs| certs.iter().map(|c| Bytes::copy_from_slice(c)).collect())
        .unwrap_or_default();
    Some((
        tls,
        PeerInfo {
            addr,
            client_certificates,
        },
    ))
}

/// Accepts TLS connections until `shutdown` is set, handing each (after its handshake) to
/// `handle` on a task of its own, which ends at the latest when `shutdown` is set. `what`
/// names the listener in logs.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    what: &'static str,
    mut shutdown: watch::Receiver<bool>,
    handle: F,
) where
    F: Fn(TlsStream<TcpStream>, PeerInfo) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    loop {
        let stream = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => return,
        };
        let (stream, _) = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "{what} accept failed");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let handle = handle.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let serve = async move {
                if let Some((tls, peer)) = accept_tls(&acceptor, stream).await {
                    handle(tls, peer).await;
                }
            };
            tokio::select! {
                () = serve => {}
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
        });
    }
}

/// Accepts MQTT/TLS connections for `server` until `shutdown` is set.
pub async fn serve_mqtt<H: Hooks>(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    server: Server<H>,
    shutdown: watch::Receiver<bool>,
) {
    accept_loop(listener, acceptor, "MQTT", shutdown, move |tls, peer| {
        let server = server.clone();
        async move {
            serve_connection(&server, tls, peer).await;
        }
    })
    .await;
}

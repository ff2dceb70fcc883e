//! TLS accept loops for the MQTT port and the HTTPS port.
//!
//! Each accepted TCP stream gets `TCP_NODELAY`, a TLS handshake bounded by
//! [`HANDSHAKE_TIMEOUT`], and its own task. A failed handshake is logged at debug level and
//! affects nobody else. Both loops stop accepting when `shutdown` fires.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use spoke_mqtt::server::{PeerInfo, serve_connection};
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tower::ServiceExt as _;

use super::MqttServer;

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
/// `handle` on a task of its own.
async fn accept_loop<F, Fut>(
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
        tokio::spawn(async move {
            if let Some((tls, peer)) = accept_tls(&acceptor, stream).await {
                handle(tls, peer).await;
            }
        });
    }
}

/// Accepts MQTT/TLS connections until `shutdown` is set.
pub async fn serve_mqtt(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    server: MqttServer,
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

/// Accepts HTTPS connections (HTTP/1.1 with upgrades, for WebSocket) until `shutdown` is set.
pub async fn serve_https(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    shutdown: watch::Receiver<bool>,
) {
    accept_loop(listener, acceptor, "HTTPS", shutdown, move |tls, peer| {
        let service = router.clone().map_request(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(peer.clone());
                request
            },
        );
        async move {
            let result = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(service))
                .with_upgrades()
                .await;
            if let Err(e) = result {
                tracing::debug!(error = %e, "HTTPS connection ended with an error");
            }
        }
    })
    .await;
}

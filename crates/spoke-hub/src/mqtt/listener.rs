//! The HTTPS port: REST and MQTT over WebSocket on [`spoke_mqtt::listener::accept_loop`]
//! (the MQTT port uses [`spoke_mqtt::listener::serve_mqtt`] directly).

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use spoke_mqtt::listener::accept_loop;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

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

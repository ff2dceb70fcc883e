//! MQTT over WebSocket at `/$iothub/websocket` (subprotocol `mqtt`, spec §3.1): the WebSocket's
//! binary messages are turned into a byte stream for the MQTT server.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use bytes::{Buf as _, Bytes};
use futures_util::{Sink, Stream};
use spoke_mqtt::server::{PeerInfo, serve_connection};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::hub::Hub;

/// Largest WebSocket message accepted (an MQTT packet at its limit, plus framing).
const MAX_MESSAGE: usize = 512 * 1024;

/// Upgrades the request and serves MQTT over the WebSocket.
pub async fn upgrade(
    State(hub): State<Arc<Hub>>,
    Extension(peer): Extension<PeerInfo>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.protocols(["mqtt"])
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            let server = hub.mqtt().clone();
            let reason = serve_connection(&server, WsStream::new(socket), peer).await;
            tracing::debug!(?reason, "MQTT over WebSocket connection ended");
        })
}

/// A WebSocket as an `AsyncRead + AsyncWrite` byte stream.
struct WsStream {
    socket: WebSocket,
    pending: Bytes,
}

impl WsStream {
    fn new(socket: WebSocket) -> Self {
        Self {
            socket,
            pending: Bytes::new(),
        }
    }
}

fn to_io(e: axum::Error) -> io::Error {
    io::Error::other(e)
}

impl AsyncRead for WsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.socket).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => self.pending = data,
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
            }
        }
    }
}

impl AsyncWrite for WsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.socket).poll_ready(cx)).map_err(to_io)?;
        Pin::new(&mut self.socket)
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(to_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx).map_err(to_io)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_close(cx).map_err(to_io)
    }
}

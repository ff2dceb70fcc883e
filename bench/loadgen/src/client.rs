//! One MQTT 3.1.1 client connection over TLS, driven by hand: packets are encoded and decoded
//! with `spoke_mqtt::codec`, writes are batched in a buffer until [`Client::flush`].
//!
//! Invariant: [`Client::read_packet`] is cancel safe (a partly received packet stays in the
//! read buffer), so callers may race it against timers.

use anyhow::{Context, bail};
use bytes::BytesMut;
use spoke_mqtt::codec::{self, Connect, ConnectReturnCode, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::identity::Identity;
use crate::target::Target;

/// Largest packet accepted from the server.
const MAX_PACKET: usize = 1 << 20;

/// A connected, accepted MQTT session.
pub struct Client {
    stream: TlsStream<TcpStream>,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

impl Client {
    /// Opens connection `index` to `target` and sends CONNECT (CleanSession 0) as `identity`;
    /// returns once the server accepted it.
    pub async fn connect(
        target: &Target,
        index: usize,
        identity: &Identity,
        keep_alive: u16,
    ) -> anyhow::Result<Self> {
        let stream = target.connect(index).await?;
        let mut client = Self {
            stream,
            rbuf: BytesMut::with_capacity(4096),
            wbuf: BytesMut::with_capacity(4096),
        };
        client.queue(&Packet::Connect(Connect {
            clean_session: false,
            keep_alive,
            client_id: identity.client_id.clone(),
            will: None,
            username: identity.username.clone(),
            password: identity.password.clone(),
        }));
        client.flush().await?;
        let reply = tokio::time::timeout(target.timeout(), client.read_packet())
            .await
            .context("no CONNACK in time")??;
        match reply {
            Some(Packet::Connack(ack)) if ack.code == ConnectReturnCode::Accepted => Ok(client),
            Some(Packet::Connack(ack)) => bail!("CONNACK refused: {:?}", ack.code),
            Some(other) => bail!("expected CONNACK, got {}", other.name()),
            None => bail!("connection closed before CONNACK"),
        }
    }

    /// Appends `packet` to the write buffer.
    pub fn queue(&mut self, packet: &Packet) {
        packet.encode(&mut self.wbuf);
    }

    /// Writes the buffered packets.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await.context("write")?;
            self.stream.flush().await.context("write")?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// The next packet from the server, or `None` once it closed the connection.
    pub async fn read_packet(&mut self) -> anyhow::Result<Option<Packet>> {
        loop {
            if let Some(packet) = codec::decode(&mut self.rbuf, MAX_PACKET).context("decode")? {
                return Ok(Some(packet));
            }
            if self.stream.read_buf(&mut self.rbuf).await.context("read")? == 0 {
                return Ok(None);
            }
        }
    }

    /// The next packet and every one already buffered behind it; an error once the server
    /// closed the connection. Cancel safe, as [`Client::read_packet`].
    pub async fn read_burst(&mut self) -> anyhow::Result<Vec<Packet>> {
        let Some(first) = self.read_packet().await? else {
            bail!("server closed the connection");
        };
        let mut packets = vec![first];
        while let Some(packet) = codec::decode(&mut self.rbuf, MAX_PACKET).context("decode")? {
            packets.push(packet);
        }
        Ok(packets)
    }

    /// Sends DISCONNECT and closes the TLS session (best effort).
    pub async fn disconnect(mut self) {
        self.queue(&Packet::Disconnect);
        if self.flush().await.is_ok() {
            let _ = self.stream.shutdown().await;
        }
    }
}

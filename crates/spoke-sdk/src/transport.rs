//! The byte side of a connection: TCP, TLS (rustls, ring) and MQTT 3.1.1 framing with
//! [`spoke_mqtt::codec`], plus the opening handshake (CONNECT → CONNACK, then SUBSCRIBE →
//! SUBACK when the session needs its subscriptions).
//!
//! Invariants: [`Transport::recv`] is cancel-safe (bytes are only read into the buffer and
//! whole packets taken out of it), and never buffers more than [`MAX_INBOUND_PACKET`] bytes
//! of one packet.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rustls::pki_types::ServerName;
use spoke_mqtt::codec::{
    self, Connect, ConnectReturnCode, Packet, PacketId, Publish, QoS, SubackCode, Subscribe,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::auth;
use crate::config::ClientConfig;
use crate::error::{ConfigError, ConnectionError};
use crate::topics;

/// Largest inbound packet accepted (C2D is at most 64 KB and method payloads 128 KB in IoT
/// Hub; twin documents are larger than either but far below this).
pub(crate) const MAX_INBOUND_PACKET: usize = 1 << 20;

/// How long a clean DISCONNECT may take before the connection is just dropped.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What never changes between connections: configuration and TLS set-up.
pub(crate) struct Endpoint {
    pub config: ClientConfig,
    tls: TlsConnector,
    server_name: ServerName<'static>,
    target: String,
}

impl Endpoint {
    pub fn new(config: ClientConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            tls: TlsConnector::from(config.tls()?),
            server_name: config.server_name()?,
            target: format!("{}:{}", config.host, config.port),
            config,
        })
    }
}

/// An open connection that completed its handshake.
#[derive(Debug)]
pub(crate) struct Opened {
    pub transport: Transport,
    /// Whether the server had the session (MQTT 3.1.1 §3.2.2.2).
    pub session_present: bool,
    /// PUBLISH packets that arrived during the handshake, in order.
    pub early: Vec<Publish>,
    /// When the token presented in this CONNECT must be renewed (spec §2.2).
    pub renew_at: Instant,
}

/// Connects, authenticates and, when `subscribe` is set or the server has no session,
/// subscribes to the client's filters and to `extra` with `subscribe_pid` (spec §3.2, §3.4).
/// The whole handshake is bounded by the connect timeout.
pub(crate) async fn open(
    endpoint: Arc<Endpoint>,
    subscribe: bool,
    subscribe_pid: PacketId,
    extra: Vec<String>,
) -> Result<Opened, ConnectionError> {
    let timeout = endpoint.config.connect_timeout;
    tokio::time::timeout(
        timeout,
        handshake(&endpoint, subscribe, subscribe_pid, extra),
    )
    .await
    .map_err(|_| ConnectionError::HandshakeTimeout)?
}

async fn handshake(
    endpoint: &Endpoint,
    subscribe: bool,
    subscribe_pid: PacketId,
    extra: Vec<String>,
) -> Result<Opened, ConnectionError> {
    let config = &endpoint.config;
    let started = Instant::now();
    let password = config
        .credentials
        .token(&config.hub_hostname, &config.identity, config.token_ttl)
        .await?;
    // `validate` made sure the TTL exceeds the margin.
    let renew_at = started + config.token_ttl.saturating_sub(config.renewal_margin);
    let io = |source| ConnectionError::Io {
        target: endpoint.target.clone(),
        source,
    };
    let tcp = TcpStream::connect((config.host.as_str(), config.port))
        .await
        .map_err(io)?;
    tcp.set_nodelay(true).map_err(io)?;
    let stream = endpoint
        .tls
        .connect(endpoint.server_name.clone(), tcp)
        .await
        .map_err(io)?;
    let mut transport = Transport {
        stream,
        read: BytesMut::with_capacity(4096),
        write: BytesMut::with_capacity(4096),
        target: endpoint.target.clone(),
        last_sent: Instant::now(),
    };
    // MQTT 3.1.1 §3.1; CleanSession=0 like the SDK (spec pitfall §0.4).
    transport
        .send(&[Packet::Connect(Connect {
            clean_session: false,
            keep_alive: config.keep_alive.as_secs() as u16,
            client_id: config.identity.client_id(),
            will: None,
            username: Some(auth::username(&config.hub_hostname, &config.identity)),
            password: Some(Bytes::from(password)),
        })])
        .await?;
    let connack = match transport.recv().await? {
        Packet::Connack(connack) => connack,
        other => {
            return Err(ConnectionError::Unexpected {
                packet: other.name(),
            });
        }
    };
    if connack.code != ConnectReturnCode::Accepted {
        return Err(ConnectionError::Refused { code: connack.code });
    }
    let mut early = Vec::new();
    if subscribe || !connack.session_present {
        let mut filters = topics::filters(&config.identity, config.edge_modules);
        filters.extend(extra);
        transport
            .send(&[Packet::Subscribe(Subscribe {
                packet_id: subscribe_pid,
                filters: filters
                    .iter()
                    .map(|f| (f.clone(), QoS::AtLeastOnce))
                    .collect(),
            })])
            .await?;
        loop {
            match transport.recv().await? {
                Packet::Suback(suback) if suback.packet_id == subscribe_pid => {
                    let refused = suback
                        .codes
                        .iter()
                        .zip(&filters)
                        .find(|(code, _)| **code == SubackCode::Failure);
                    if let Some((_, filter)) = refused {
                        return Err(ConnectionError::SubscriptionRefused {
                            filter: filter.clone(),
                        });
                    }
                    break;
                }
                Packet::Publish(publish) => early.push(publish),
                other => {
                    return Err(ConnectionError::Unexpected {
                        packet: other.name(),
                    });
                }
            }
        }
    }
    Ok(Opened {
        transport,
        session_present: connack.session_present,
        early,
        renew_at,
    })
}

/// A TLS connection carrying MQTT packets.
#[derive(Debug)]
pub(crate) struct Transport {
    stream: TlsStream<TcpStream>,
    read: BytesMut,
    write: BytesMut,
    target: String,
    /// When the last packet was written (for keep-alive, MQTT 3.1.1 §3.1.2.10).
    pub last_sent: Instant,
}

impl Transport {
    fn io_error(&self, source: std::io::Error) -> ConnectionError {
        ConnectionError::Io {
            target: self.target.clone(),
            source,
        }
    }

    /// Writes `packets` in one flush.
    pub async fn send(&mut self, packets: &[Packet]) -> Result<(), ConnectionError> {
        if packets.is_empty() {
            return Ok(());
        }
        self.write.clear();
        for packet in packets {
            packet.encode(&mut self.write);
        }
        let result = async {
            self.stream.write_all(&self.write).await?;
            self.stream.flush().await
        }
        .await;
        result.map_err(|e| self.io_error(e))?;
        self.last_sent = Instant::now();
        Ok(())
    }

    /// The next packet from the server (cancel-safe).
    pub async fn recv(&mut self) -> Result<Packet, ConnectionError> {
        loop {
            if let Some(packet) = codec::decode(&mut self.read, MAX_INBOUND_PACKET)
                .map_err(ConnectionError::Decode)?
            {
                return Ok(packet);
            }
            let n = self
                .stream
                .read_buf(&mut self.read)
                .await
                .map_err(|e| self.io_error(e))?;
            if n == 0 {
                return Err(ConnectionError::Closed);
            }
        }
    }

    /// Sends DISCONNECT (MQTT 3.1.1 §3.14) and closes the TLS session, ignoring errors and
    /// giving up after [`DISCONNECT_TIMEOUT`]: the connection is abandoned either way.
    pub async fn disconnect(mut self) {
        let _ = tokio::time::timeout(DISCONNECT_TIMEOUT, async {
            if self.send(&[Packet::Disconnect]).await.is_ok() {
                let _ = self.stream.shutdown().await;
            }
        })
        .await;
    }
}

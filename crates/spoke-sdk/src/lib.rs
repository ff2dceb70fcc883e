//! Spoke's Rust device and module client: MQTT 3.1.1 over TLS to an IoT Hub compatible
//! endpoint (Spoke Hub, Azure IoT Hub, an edge hub), on the wire exactly as azure-iot-device
//! 2.14.0 (spec `azure-iot-hub-protocol.md` §1-§3, §8).
//!
//! ```no_run
//! # async fn demo(cs: &str, ca_pem: &str) -> Result<(), spoke_sdk::Error> {
//! use spoke_sdk::{Client, ClientConfig, Event};
//! use spoke_core::message::Message;
//!
//! let (client, mut events) = Client::connect(ClientConfig::from_connection_string(cs, ca_pem)?).await?;
//! client.send_event(Message::new(r#"{"temperature":21.5}"#)).await?;
//! while let Some(event) = events.recv().await {
//!     if let Event::Method { rid, .. } = event {
//!         client.respond_method(&rid, 200, &serde_json::json!({"ok": true})).await?;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Layers, each using only those below it:
//! - [`topics`]: hub-to-device topic parsing and the outbound topics (no I/O);
//! - `session`: QoS 1 operations, packet identifiers, twin requests, inbound meaning (no I/O);
//! - `transport`: TCP, TLS and MQTT framing with `spoke_mqtt::codec`, and the handshake;
//! - [`Client`]: the handle and the background task that owns the connection;
//! - [`edge`]: the `IOTEDGE_*` environment and the workload API signer.
//!
//! [`fuzzing`] holds the fuzz entry points.

mod auth;
mod client;
mod config;
pub mod edge;
mod error;
mod event;
pub mod fuzzing;
mod session;
pub mod topics;
mod transport;

pub use auth::{API_VERSION, Credentials, Signer, USER_AGENT};
pub use client::{Acked, Client, Events, MAX_MESSAGE_SIZE};
pub use config::{ClientConfig, DEFAULT_PORT};
pub use error::{ConfigError, ConnectionError, Error, SignError, WorkloadError};
pub use event::{DisconnectReason, Event};
pub use spoke_mqtt::codec::ConnectReturnCode;

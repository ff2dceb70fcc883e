//! MQTT 3.1.1 (OASIS standard) for Spoke: a codec, sans-I/O session state and a server core.
//!
//! Layers, each depending only on the ones above it:
//! - [`codec`]: bytes ↔ [`codec::Packet`], no I/O;
//! - [`topic`]: topic name and filter validation and matching (§4.7);
//! - [`session`]: per-client session state (subscriptions, QoS 1 window and queue), no I/O;
//! - [`server`]: the connection driver, the session registry and the [`server::Hooks`] and
//!   [`server::SessionStore`] traits through which an application (the Spoke hub, the edge
//!   hub) plugs in authentication, policy and storage. Nothing here knows IoT Hub;
//! - [`listener`]: TLS accept loops that feed connections to a [`server::Server`];
//! - [`order`]: a connection's arrival order, for applications that store concurrently;
//! - [`websocket`]: MQTT over WebSocket, upgraded from a request of a hyper HTTP server.
//!
//! [`fuzzing`] holds the entry points of the fuzz targets.

// Protocol prose says QoS, IoT Hub, CleanSession, which doc_markdown takes for code.
#![allow(clippy::doc_markdown)]

pub mod codec;
pub mod fuzzing;
pub mod listener;
pub mod order;
pub mod server;
pub mod session;
pub mod topic;
pub mod websocket;

pub use codec::{Packet, PacketId, QoS};
pub use server::{
    Authenticated, ConnectInfo, DeliverError, Delivery, DisconnectReason, Gone, Hooks,
    MemorySessionStore, PeerInfo, PublishError, Server, ServerConfig, SessionStore, StoreError,
    serve_connection,
};

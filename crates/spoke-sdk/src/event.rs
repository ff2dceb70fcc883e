//! What the hub tells the application, in the order it happened: connection changes,
//! desired-property patches, direct method requests and messages (C2D or module inputs).

use std::sync::Arc;

use serde_json::Value;
use spoke_core::message::Message;

use crate::error::ConnectionError;

/// One thing that happened on the client's connection.
// Events move once through a bounded channel; boxing the message would cost an allocation
// per message for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Event {
    /// A connection is established (after subscribing, when the session was new).
    Connected,
    /// The connection ended; the client reconnects on its own until closed.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
    /// A desired-properties patch: the patch as the back end applied it, with `$version`
    /// (spec §3.8).
    DesiredPatch(Value),
    /// A direct method request (spec §3.9); answer it with [`crate::Client::respond_method`].
    Method {
        /// The method name.
        name: String,
        /// The request ID to answer.
        rid: String,
        /// The JSON payload (`null` when the request has none).
        payload: Value,
    },
    /// A message: C2D for a device (`input` is `None`, spec §3.6), or a module input
    /// message (spec §3.7).
    Message {
        /// The module input the message arrived on.
        input: Option<String>,
        /// The message, with its system and application properties.
        message: Message,
    },
}

/// Why a connection ended.
#[derive(Debug, Clone)]
pub enum DisconnectReason {
    /// The client reconnects to present a new SAS token (spec §2.2).
    TokenRenewal,
    /// The connection failed or the server closed it.
    Lost(Arc<ConnectionError>),
}

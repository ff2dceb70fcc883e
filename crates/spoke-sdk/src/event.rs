//! What the hub tells the application, in the order it happened: connection changes,
//! desired-property patches, direct method requests and messages (C2D or module inputs).

use std::sync::Arc;

use serde_json::Value;
use spoke_core::ids::ModuleId;
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
    /// A desired-properties patch for `module`, received by its IoT Edge device's connection
    /// ([`crate::ClientConfig::edge_modules`]).
    ModuleDesiredPatch {
        /// The module whose twin changed.
        module: ModuleId,
        /// The patch, with `$version`.
        patch: Value,
    },
    /// A direct method request for `module`, received by its IoT Edge device's connection;
    /// answer it with [`crate::Client::respond_module_method`].
    ModuleMethod {
        /// The module called.
        module: ModuleId,
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

impl Event {
    /// This event as received for `module` on its IoT Edge device's connection.
    pub(crate) fn for_module(self, module: ModuleId) -> Self {
        match self {
            Self::DesiredPatch(patch) => Self::ModuleDesiredPatch { module, patch },
            Self::Method { name, rid, payload } => Self::ModuleMethod {
                module,
                name,
                rid,
                payload,
            },
            other => other,
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone)]
pub enum DisconnectReason {
    /// The client reconnects to present a new SAS token (spec §2.2).
    TokenRenewal,
    /// The connection failed or the server closed it.
    Lost(Arc<ConnectionError>),
}

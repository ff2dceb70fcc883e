//! Error types: one enum per layer (configuration, workload API, connection, operations), each
//! with structured fields; causes are chained through `#[source]`, never repeated in messages.

use spoke_core::connstr::ConnStrError;
use spoke_core::sas::SasError;
use spoke_mqtt::codec::{ConnectReturnCode, DecodeError};

/// Why a [`crate::ClientConfig`] could not be built or used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The connection string does not parse.
    #[error("invalid connection string")]
    ConnectionString(#[source] ConnStrError),
    /// The connection string has no `DeviceId` (it is a service connection string).
    #[error("the connection string names no device")]
    NotADevice,
    /// The connection string uses `x509=true`, which this client does not support.
    #[error("X.509 connection strings are not supported")]
    X509Unsupported,
    /// The connection string carries no `SharedAccessKey`.
    #[error("the connection string has no SharedAccessKey")]
    MissingKey,
    /// The shared access key is not base64.
    #[error("invalid shared access key")]
    InvalidKey(#[source] SasError),
    /// The trusted CA text holds no usable PEM certificate.
    #[error("no usable CA certificate in the trust PEM")]
    InvalidTrust(#[source] Option<rustls::Error>),
    /// The TLS target is neither a DNS name nor an IP address.
    #[error("{host:?} is not a valid TLS server name")]
    InvalidServerName {
        /// The rejected host.
        host: String,
    },
    /// The token TTL does not exceed the renewal margin by at least one second, or the
    /// keep-alive is outside 1-1740 s (the device SDK's range, spec §3.1).
    #[error("invalid timing: {reason}")]
    InvalidTiming {
        /// What is wrong.
        reason: &'static str,
    },
    /// An edge environment variable is missing (azure-iot-edge-contracts.md §2.3).
    #[error("environment variable {name} is not set")]
    MissingVariable {
        /// The variable's name.
        name: &'static str,
    },
    /// An edge environment variable holds an invalid value.
    #[error("environment variable {name} is invalid")]
    InvalidVariable {
        /// The variable's name.
        name: &'static str,
    },
    /// The CA file named by `EdgeModuleCACertificateFile` cannot be read.
    #[error("cannot read CA file {path}")]
    ReadCaFile {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The workload API did not provide the trust bundle.
    #[error("cannot get the trust bundle from the workload API")]
    TrustBundle(#[source] WorkloadError),
}

/// Why a workload API request failed (azure-iot-edge-contracts.md §1.2).
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// `IOTEDGE_WORKLOADURI` is not a `unix://` URI.
    #[error("unsupported workload URI {uri:?} (only unix:// is supported)")]
    UnsupportedUri {
        /// The URI.
        uri: String,
    },
    /// The socket could not be reached.
    #[error("cannot connect to the workload socket {path}")]
    Connect {
        /// The socket path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// HTTP failed (connection closed, malformed response, body too large).
    #[error("workload API request failed")]
    Http(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The request took longer than the workload timeout.
    #[error("workload API request timed out")]
    Timeout,
    /// The daemon answered with an error status.
    #[error("workload API answered {status}: {message}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// The `message` of the error body, or the body text.
        message: String,
    },
    /// The answer is not the documented JSON.
    #[error("invalid workload API response")]
    InvalidResponse(#[source] serde_json::Error),
    /// The digest is not base64.
    #[error("the workload API returned a digest that is not base64")]
    InvalidDigest(#[source] base64::DecodeError),
}

/// Why signing a SAS token failed: the cause comes from the [`crate::Signer`].
#[derive(Debug, thiserror::Error)]
#[error("signing the SAS token failed")]
pub struct SignError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Why a connection attempt or an established connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// TCP connect, TLS handshake, read or write failed.
    #[error("I/O error on the connection to {target}")]
    Io {
        /// `host:port`.
        target: String,
        /// The I/O error (TLS errors arrive wrapped in it).
        #[source]
        source: std::io::Error,
    },
    /// The SAS token could not be made.
    #[error("cannot make a SAS token")]
    Token(#[source] SasError),
    /// The signer failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The server refused the CONNECT (spec §3.2: 4 and 5 are authorization failures).
    #[error("the server refused the connection: {code:?}")]
    Refused {
        /// The CONNACK return code.
        code: ConnectReturnCode,
    },
    /// The server refused a subscription (SUBACK 0x80).
    #[error("the server refused the subscription to {filter}")]
    SubscriptionRefused {
        /// The refused filter.
        filter: String,
    },
    /// The server sent bytes that are not MQTT 3.1.1.
    #[error("malformed packet from the server")]
    Decode(#[source] DecodeError),
    /// The server sent a packet that is not allowed at this point.
    #[error("unexpected {packet} from the server")]
    Unexpected {
        /// The packet's name.
        packet: &'static str,
    },
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// The CONNECT/CONNACK/SUBSCRIBE handshake took longer than the connect timeout.
    #[error("connection handshake timed out")]
    HandshakeTimeout,
    /// No PINGRESP arrived within a keep-alive period after a PINGREQ (MQTT 3.1.1 §3.1.2.10).
    #[error("keep-alive timed out")]
    KeepAliveTimeout,
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The first connection failed ([`crate::Client::connect`] only; later connection losses
    /// are retried and reported as [`crate::Event::Disconnected`]).
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The client has been closed, or its background task has ended.
    #[error("the client is closed")]
    Closed,
    /// The message body exceeds the device SDK's limit (spec §3.5).
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The body size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The topic the operation would publish to is not a valid MQTT topic name (too long, or
    /// a wildcard in an identifier).
    #[error("invalid topic for this operation")]
    InvalidTopic(#[source] spoke_mqtt::topic::TopicError),
    /// The hub answered a twin request with an error status (spec §3.8).
    #[error("the twin request failed with status {status}")]
    TwinStatus {
        /// The status from the response topic.
        status: u16,
        /// The response body (often a JSON error), as text.
        body: String,
    },
    /// The hub's twin response is not what spec §3.8 describes.
    #[error("invalid twin response: {reason}")]
    InvalidTwinResponse {
        /// What is wrong.
        reason: &'static str,
    },
}

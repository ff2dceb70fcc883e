//! Hub configuration: what `spoke-hub`'s flags (ARCHITECTURE.md "Contracts") resolve to.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything [`crate::run`] needs to start a hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Data directory: initialized on first start, reused later.
    pub data_dir: PathBuf,
    /// Host name devices and services use (`HostName=` in connection strings).
    pub hostname: String,
    /// Address both listeners bind to.
    pub bind: IpAddr,
    /// MQTT over TLS port (8883 in Azure).
    pub mqtt_port: u16,
    /// HTTPS port: REST API and MQTT over WebSocket (443 in Azure).
    pub https_port: u16,
    /// How long telemetry stays in the built-in events log (7 days in IoT Hub).
    pub events_retention: Duration,
}

impl HubConfig {
    /// A configuration with the documented defaults for everything but the data directory.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            hostname: "localhost".into(),
            bind: IpAddr::from([127, 0, 0, 1]),
            mqtt_port: 8883,
            https_port: 443,
            events_retention: Duration::from_hours(7 * 24),
        }
    }
}

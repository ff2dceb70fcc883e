//! Shared plumbing of Spoke's sample modules, the counterpart of Azure IoT Edge's
//! `ModuleUtil`: the event loop ([`driver`]) around a module's synchronous [`ModuleCore`],
//! how a module finds its hub ([`ConnectArgs`]), when it stops
//! ([`shutdown_signal`]), where it logs ([`init_tracing`]), which client errors end its event
//! loop ([`keep_going`]) and how it reports numbers in its twin ([`json_number`]).
//!
//! With the `testing` feature, `testing` adds an in-process Spoke Hub for the modules'
//! tests; release builds of the modules never compile it.

use std::future::Future;
use std::path::PathBuf;

use serde_json::Value;
use spoke_sdk::{ClientConfig, ConfigError};

pub mod driver;
#[cfg(feature = "testing")]
pub mod testing;

pub use driver::{Driver, ModuleCore, Output};

/// Where the module connects: the edge environment by default, or a connection string and
/// CA file when it runs outside an edge device.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Module connection string (`HostName=..;DeviceId=..;ModuleId=..;SharedAccessKey=..`)
    /// for running outside an edge device. Without it the module reads the `IOTEDGE_*`
    /// environment (or `EdgeHubConnectionString` with `EdgeModuleCACertificateFile`).
    #[arg(long, value_name = "CS", requires = "ca_file")]
    pub connection_string: Option<String>,
    /// PEM file of the CA that the hub's server certificate chains to (with
    /// `--connection-string`).
    #[arg(long, value_name = "FILE", requires = "connection_string")]
    pub ca_file: Option<PathBuf>,
    /// MQTT-over-TLS port of the hub or edge hub.
    #[arg(long, value_name = "PORT", default_value_t = spoke_sdk::DEFAULT_PORT)]
    pub mqtt_port: u16,
}

/// Why [`ConnectArgs::client_config`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The `--ca-file` cannot be read.
    #[error("cannot read the CA file {path}")]
    ReadCaFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The connection string or the edge environment is unusable.
    #[error("invalid client configuration")]
    Config(#[from] ConfigError),
}

impl ConnectArgs {
    /// The client configuration these arguments name.
    pub async fn client_config(&self) -> Result<ClientConfig, ConnectError> {
        let mut config = match (&self.connection_string, &self.ca_file) {
            (Some(cs), Some(path)) => {
                let ca_pem = tokio::fs::read_to_string(path).await.map_err(|source| {
                    ConnectError::ReadCaFile {
                        path: path.clone(),
                        source,
                    }
                })?;
                ClientConfig::from_connection_string(cs, ca_pem)?
            }
            _ => ClientConfig::from_edge_environment().await?,
        };
        config.port = self.mqtt_port;
        Ok(config)
    }
}

/// Installs the SIGTERM and SIGINT handlers now and returns a future that completes when
/// either arrives (the container runtime stops a module with SIGTERM).
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM received, stopping"),
            _ = interrupt.recv() => tracing::info!("SIGINT received, stopping"),
        }
    })
}

/// Logs to standard output (which the edge runtime collects) at the level `RUST_LOG` names,
/// `info` by default; colours only on a terminal.
pub fn init_tracing() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .init();
}

/// Sorts the result of a client operation for a module's event loop: `Ok(Some(_))` on
/// success; `Ok(None)` after logging an error the module survives (a refused twin patch, a
/// message over the size limit); `Err` only when the client is closed, which ends the loop.
pub fn keep_going<T>(
    result: Result<T, spoke_sdk::Error>,
    what: &'static str,
) -> Result<Option<T>, spoke_sdk::Error> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(spoke_sdk::Error::Closed) => Err(spoke_sdk::Error::Closed),
        Err(error) => {
            tracing::warn!(%error, "cannot {what}");
            Ok(None)
        }
    }
}

/// `value` as a JSON number, integral when it is a whole number (so a reported `5` reads
/// `5`, not `5.0`, as the .NET modules report it); `null` when it is not finite.
pub fn json_number(value: f64) -> Value {
    // 2^53: every whole f64 below it is an exact integer.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if value.fract() == 0.0 && value.abs() < EXACT {
        Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        connect: ConnectArgs,
    }

    #[test]
    fn only_a_closed_client_stops_the_loop() {
        assert_eq!(
            keep_going(Ok::<_, spoke_sdk::Error>(7), "x").unwrap(),
            Some(7)
        );
        let refused = spoke_sdk::Error::TwinStatus {
            status: 400,
            body: String::new(),
        };
        assert_eq!(keep_going::<()>(Err(refused), "x").unwrap(), None);
        assert!(matches!(
            keep_going::<()>(Err(spoke_sdk::Error::Closed), "x"),
            Err(spoke_sdk::Error::Closed)
        ));
    }

    #[test]
    fn numbers_render_like_dotnet() {
        assert_eq!(json_number(5.0).to_string(), "5");
        assert_eq!(json_number(-3.0).to_string(), "-3");
        assert_eq!(json_number(0.25), json!(0.25));
        assert_eq!(json_number(f64::NAN), Value::Null);
        assert_eq!(json_number(f64::INFINITY), Value::Null);
        assert_eq!(json_number(1e300), json!(1e300));
    }

    #[test]
    fn connection_string_and_ca_file_go_together() {
        let cli = Cli::try_parse_from(["m"]).unwrap();
        assert!(cli.connect.connection_string.is_none());
        assert_eq!(cli.connect.mqtt_port, 8883);
        assert!(Cli::try_parse_from(["m", "--connection-string", "x"]).is_err());
        assert!(Cli::try_parse_from(["m", "--ca-file", "x"]).is_err());
        let cli = Cli::try_parse_from([
            "m",
            "--connection-string",
            "cs",
            "--ca-file",
            "ca.pem",
            "--mqtt-port",
            "1883",
        ])
        .unwrap();
        assert_eq!(cli.connect.connection_string.as_deref(), Some("cs"));
        assert_eq!(cli.connect.mqtt_port, 1883);
    }

    #[tokio::test]
    async fn missing_ca_file_is_named() {
        let args = ConnectArgs {
            connection_string: Some("HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=AAAA".into()),
            ca_file: Some("/nonexistent/ca.pem".into()),
            mqtt_port: 8883,
        };
        let err = args.client_config().await.unwrap_err();
        assert!(
            matches!(&err, ConnectError::ReadCaFile { path, .. } if path.ends_with("ca.pem")),
            "{err:?}"
        );
    }
}

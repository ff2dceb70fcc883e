//! Hub-side commands (ARCHITECTURE.md "spoke (hub side)").

use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use futures_util::StreamExt as _;
use reqwest::Method;
use serde_json::{Value, json};
use spoke_core::connstr::ConnectionString;
use spoke_core::ids::{DeviceId, ModuleId};

use crate::client::{HubClient, segment};

/// Hub commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Device identities.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Module identities.
    #[command(subcommand)]
    Module(ModuleCommand),
    /// Device and module twins.
    #[command(subcommand)]
    Twin(TwinCommand),
    /// Direct methods.
    #[command(subcommand)]
    Method(MethodCommand),
    /// Cloud-to-device messages.
    #[command(subcommand)]
    C2d(C2dCommand),
    /// Print telemetry as it arrives (or replay it from a point in time).
    MonitorEvents(MonitorArgs),
    /// Edge deployments.
    #[command(subcommand)]
    Deployment(DeploymentCommand),
    /// Run an IoT Hub query, e.g. "SELECT * FROM devices WHERE tags.env = 'prod'".
    Query {
        /// The query text.
        query: String,
    },
}

/// `spoke device ...`
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Create a device with generated keys.
    Create {
        /// Device id.
        id: String,
        /// Make it an IoT Edge device.
        #[arg(long)]
        edge: bool,
    },
    /// List devices.
    List,
    /// Show one device.
    Show {
        /// Device id.
        id: String,
    },
    /// Delete a device and its modules.
    Delete {
        /// Device id.
        id: String,
    },
    /// Print the connection string of a device (or of one of its modules).
    ConnectionString {
        /// Device id.
        id: String,
        /// Module id.
        #[arg(long)]
        module: Option<String>,
    },
}

/// `spoke module ...`
#[derive(Debug, Subcommand)]
pub enum ModuleCommand {
    /// Create a module with generated keys.
    Create {
        /// Device id.
        device: String,
        /// Module id.
        module: String,
    },
    /// List the modules of a device.
    List {
        /// Device id.
        device: String,
    },
    /// Delete a module.
    Delete {
        /// Device id.
        device: String,
        /// Module id.
        module: String,
    },
}

/// `spoke twin ...`
#[derive(Debug, Subcommand)]
pub enum TwinCommand {
    /// Show a twin.
    Show {
        /// Device id.
        id: String,
        /// Module id.
        #[arg(long)]
        module: Option<String>,
    },
    /// Patch desired properties and/or tags.
    Update {
        /// Device id.
        id: String,
        /// Module id.
        #[arg(long)]
        module: Option<String>,
        /// Desired-properties patch (JSON object; null deletes a key).
        #[arg(long)]
        desired: Option<String>,
        /// Tags patch (JSON object).
        #[arg(long)]
        tags: Option<String>,
    },
}

/// `spoke deployment ...`
#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// Apply a deployment manifest (`{"modulesContent": ...}`) to one edge device now.
    Apply {
        /// Edge device id.
        device: String,
        /// The manifest file (JSON).
        #[arg(long)]
        manifest: std::path::PathBuf,
    },
}

/// `spoke method ...`
#[derive(Debug, Subcommand)]
pub enum MethodCommand {
    /// Invoke a direct method and print `{status, payload}`.
    Invoke {
        /// Device id.
        id: String,
        /// Method name.
        name: String,
        /// Module id.
        #[arg(long)]
        module: Option<String>,
        /// Request payload (JSON).
        #[arg(long)]
        payload: Option<String>,
        /// Seconds to wait for the answer (5-300).
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
}

/// `spoke c2d ...`
#[derive(Debug, Subcommand)]
pub enum C2dCommand {
    /// Queue a message for a device.
    Send {
        /// Device id.
        id: String,
        /// Message body.
        #[arg(long, default_value = "")]
        data: String,
        /// Application property KEY=VALUE (repeatable).
        #[arg(long = "prop", value_parser = parse_prop)]
        props: Vec<(String, String)>,
        /// Message id.
        #[arg(long)]
        message_id: Option<String>,
    },
}

/// Output format of `monitor-events`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    /// One JSON object per line.
    Json,
    /// Indented JSON.
    Pretty,
}

/// `spoke monitor-events` options.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Only this device's events.
    #[arg(long)]
    device_id: Option<String>,
    /// Replay stored events from this time (ms since the Unix epoch) on.
    #[arg(long)]
    enqueued_time: Option<i64>,
    /// Stop (exit 0) after this many seconds.
    #[arg(long)]
    timeout: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Pretty)]
    output: Output,
}

fn parse_prop(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

fn parse_json(what: &str, text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).with_context(|| format!("--{what} is not valid JSON"))
}

fn print(value: &Value) -> anyhow::Result<()> {
    line(&serde_json::to_string_pretty(value)?)
}

/// Writes one line to stdout; a closed pipe (`spoke ... | head`) ends the output quietly.
fn line(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => Ok(other?),
    }
}

fn twin_path(id: &str, module: Option<&str>) -> String {
    match module {
        Some(m) => format!("/twins/{}/modules/{}", segment(id), segment(m)),
        None => format!("/twins/{}", segment(id)),
    }
}

/// Runs one hub command.
pub async fn run(client: &HubClient, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Device(c) => device(client, c).await,
        Command::Module(c) => module(client, c).await,
        Command::Twin(c) => twin(client, c).await,
        Command::Method(MethodCommand::Invoke {
            id,
            name,
            module,
            payload,
            timeout,
        }) => {
            let payload = payload
                .as_deref()
                .map(|p| parse_json("payload", p))
                .transpose()?;
            let body = json!({
                "methodName": name,
                "payload": payload,
                "responseTimeoutInSeconds": timeout,
                "connectTimeoutInSeconds": 0,
            });
            let path = format!("{}/methods", twin_path(&id, module.as_deref()));
            print(
                &client
                    .json(client.request(Method::POST, &path)?.json(&body))
                    .await?,
            )
        }
        Command::C2d(C2dCommand::Send {
            id,
            data,
            props,
            message_id,
        }) => {
            let mut request = client
                .request(
                    Method::POST,
                    &format!("/devices/{}/messages/deviceBound", segment(&id)),
                )?
                .body(data);
            if let Some(mid) = message_id {
                request = request.header("iothub-messageid", mid);
            }
            for (k, v) in props {
                request = request.header(format!("iothub-app-{k}"), v);
            }
            client.send(request).await?;
            Ok(())
        }
        Command::MonitorEvents(args) => monitor(client, args).await,
        Command::Deployment(DeploymentCommand::Apply { device, manifest }) => {
            let text = std::fs::read_to_string(&manifest)
                .with_context(|| format!("cannot read {}", manifest.display()))?;
            let content: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", manifest.display()))?;
            let path = format!("/devices/{}/applyConfigurationContent", segment(&device));
            client
                .send(client.request(Method::POST, &path)?.json(&content))
                .await?;
            Ok(())
        }
        Command::Query { query } => {
            let mut all = Vec::new();
            let mut continuation: Option<String> = None;
            loop {
                let mut request = client
                    .request(Method::POST, "/devices/query")?
                    .json(&json!({"query": query}));
                if let Some(c) = &continuation {
                    request = request.header("x-ms-continuation", c);
                }
                let response = client.send(request).await?;
                continuation = response
                    .headers()
                    .get("x-ms-continuation")
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned);
                match response.json::<Value>().await? {
                    Value::Array(items) => all.extend(items),
                    other => bail!("unexpected query answer: {other}"),
                }
                if continuation.is_none() {
                    break;
                }
            }
            print(&Value::Array(all))
        }
    }
}

async fn device(client: &HubClient, command: DeviceCommand) -> anyhow::Result<()> {
    match command {
        DeviceCommand::Create { id, edge } => {
            DeviceId::parse(&id).context("invalid device id")?;
            let body = json!({
                "deviceId": id,
                "status": "enabled",
                "authentication": {"type": "sas", "symmetricKey": {}},
                "capabilities": {"iotEdge": edge},
            });
            let path = format!("/devices/{}", segment(&id));
            print(
                &client
                    .json(client.request(Method::PUT, &path)?.json(&body))
                    .await?,
            )
        }
        DeviceCommand::List => print(
            &client
                .json(client.request(Method::GET, "/devices")?)
                .await?,
        ),
        DeviceCommand::Show { id } => {
            let path = format!("/devices/{}", segment(&id));
            print(&client.json(client.request(Method::GET, &path)?).await?)
        }
        DeviceCommand::Delete { id } => {
            let path = format!("/devices/{}", segment(&id));
            client
                .send(
                    client
                        .request(Method::DELETE, &path)?
                        .header("if-match", "\"*\""),
                )
                .await?;
            Ok(())
        }
        DeviceCommand::ConnectionString { id, module } => {
            let path = match &module {
                Some(m) => format!("/devices/{}/modules/{}", segment(&id), segment(m)),
                None => format!("/devices/{}", segment(&id)),
            };
            let entry = client.json(client.request(Method::GET, &path)?).await?;
            let Some(key) = entry["authentication"]["symmetricKey"]["primaryKey"].as_str() else {
                bail!("{id} has no symmetric key (it uses X.509)");
            };
            let device = DeviceId::parse(&id)?;
            let cs = match module {
                Some(m) => {
                    ConnectionString::module(client.host(), device, ModuleId::parse(&m)?, key)?
                }
                None => ConnectionString::device(client.host(), device, key)?,
            };
            line(&cs.to_string())
        }
    }
}

async fn module(client: &HubClient, command: ModuleCommand) -> anyhow::Result<()> {
    match command {
        ModuleCommand::Create { device, module } => {
            let body = json!({
                "deviceId": device,
                "moduleId": module,
                "authentication": {"type": "sas", "symmetricKey": {}},
            });
            let path = format!("/devices/{}/modules/{}", segment(&device), segment(&module));
            print(
                &client
                    .json(client.request(Method::PUT, &path)?.json(&body))
                    .await?,
            )
        }
        ModuleCommand::List { device } => {
            let path = format!("/devices/{}/modules", segment(&device));
            print(&client.json(client.request(Method::GET, &path)?).await?)
        }
        ModuleCommand::Delete { device, module } => {
            let path = format!("/devices/{}/modules/{}", segment(&device), segment(&module));
            client
                .send(
                    client
                        .request(Method::DELETE, &path)?
                        .header("if-match", "\"*\""),
                )
                .await?;
            Ok(())
        }
    }
}

async fn twin(client: &HubClient, command: TwinCommand) -> anyhow::Result<()> {
    match command {
        TwinCommand::Show { id, module } => {
            let path = twin_path(&id, module.as_deref());
            print(&client.json(client.request(Method::GET, &path)?).await?)
        }
        TwinCommand::Update {
            id,
            module,
            desired,
            tags,
        } => {
            let mut patch = serde_json::Map::new();
            if let Some(text) = desired {
                patch.insert(
                    "properties".into(),
                    json!({"desired": parse_json("desired", &text)?}),
                );
            }
            if let Some(text) = tags {
                patch.insert("tags".into(), parse_json("tags", &text)?);
            }
            if patch.is_empty() {
                bail!("nothing to update: pass --desired and/or --tags");
            }
            let url = twin_path(&id, module.as_deref());
            let request = client
                .request(Method::PATCH, &url)?
                .header("if-match", "\"*\"")
                .json(&Value::Object(patch));
            print(&client.json(request).await?)
        }
    }
}

async fn monitor(client: &HubClient, args: MonitorArgs) -> anyhow::Result<()> {
    let mut request = client.request(Method::GET, "/events")?;
    if let Some(d) = &args.device_id {
        request = request.query(&[("deviceId", d)]);
    }
    if let Some(t) = args.enqueued_time {
        request = request.query(&[("enqueuedTime", t.to_string())]);
    }
    let follow = async {
        let response = client.send(request).await?;
        let mut stream = response.bytes_stream();
        let mut buffer = Vec::new();
        while let Some(chunk) = stream.next().await {
            buffer.extend_from_slice(&chunk.context("the events stream broke")?);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let raw: Vec<u8> = buffer.drain(..=end).collect();
                let event: Value =
                    serde_json::from_slice(&raw).context("invalid event from the hub")?;
                match args.output {
                    Output::Json => line(&event.to_string())?,
                    Output::Pretty => print(&event)?,
                }
            }
        }
        anyhow::Ok(())
    };
    match args.timeout {
        Some(secs) => match tokio::time::timeout(Duration::from_secs(secs), follow).await {
            Ok(result) => result,
            Err(_) => Ok(()),
        },
        None => follow.await,
    }
}

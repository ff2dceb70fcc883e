//! `provision`: creates devices on Spoke Hub over its registry REST API (`PUT /devices/{id}`,
//! spec §5.2), with symmetric keys derived from a seed ([`device_key`]) so the MQTT modes can
//! sign their passwords.
//!
//! Workers share one counter of device indexes; each keeps one HTTPS connection, reopened
//! after an error, and tries each device at most [`ATTEMPTS`] times.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use spoke_core::connstr::ConnectionString;
use spoke_core::sas;
use tokio::task::JoinSet;

use crate::http::Connection;
use crate::identity::{device_key, unix_now};
use crate::stats::Errors;
use crate::target::{Target, TargetArgs};

/// Tries per device.
const ATTEMPTS: usize = 3;
/// API version sent with every request (spec §5).
const API_VERSION: &str = "2021-04-12";

/// Options of `provision`.
#[derive(Debug, clap::Args)]
pub struct ProvisionArgs {
    /// The hub's HTTPS endpoint.
    #[command(flatten)]
    target: TargetArgs,
    /// File holding the hub's owner connection string (`DIR/service.connstr`).
    #[arg(long)]
    connection_string_file: PathBuf,
    /// Number of devices; device `i` gets the id from `--device-id`.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Device id template (`{i}` is the index).
    #[arg(long, default_value = "dev{i}")]
    device_id: String,
    /// Seed the device keys are derived from.
    #[arg(long)]
    key_seed: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

/// Shared state of the workers.
struct Job {
    target: Target,
    host: String,
    authorization: String,
    args: ProvisionArgs,
    next: AtomicUsize,
}

/// Runs `provision` and returns its report; fails if any device could not be created.
pub async fn run(args: ProvisionArgs) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(&args.connection_string_file)
        .with_context(|| format!("cannot read {}", args.connection_string_file.display()))?;
    let cs = ConnectionString::parse(text.trim()).context("invalid connection string")?;
    let (Some(policy), Some(key)) = (cs.shared_access_key_name(), cs.shared_access_key()) else {
        bail!("the connection string needs SharedAccessKeyName and SharedAccessKey");
    };
    let host = cs.host_name().to_owned();
    let authorization = sas::service_token(&host, policy, key, unix_now() + 3600)
        .context("cannot sign a service token")?;
    let started = Instant::now();
    let workers = args.concurrency.max(1);
    let job = Arc::new(Job {
        target: Target::new(&args.target)?,
        host,
        authorization,
        args,
        next: AtomicUsize::new(0),
    });
    let mut tasks = JoinSet::new();
    for _ in 0..workers {
        tasks.spawn(worker(Arc::clone(&job)));
    }
    let mut created = 0;
    let mut errors = Errors::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((n, e)) => {
                created += n;
                errors.merge(e);
            }
            Err(e) => errors.add(&anyhow::Error::new(e)),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let report = json!({
        "mode": "provision",
        "requested": job.args.count,
        "created": created,
        "secs": secs,
        "per_sec": created as f64 / secs.max(1e-9),
        "errors": errors.to_json(),
    });
    if created != job.args.count {
        bail!("created {created} of {} devices: {report}", job.args.count);
    }
    Ok(report)
}

/// Creates devices until the counter passes the count; returns how many it created and its
/// errors (one per failed device).
async fn worker(job: Arc<Job>) -> (usize, Errors) {
    let mut created = 0;
    let mut errors = Errors::default();
    let mut conn: Option<Connection> = None;
    loop {
        let index = job.next.fetch_add(1, Ordering::Relaxed);
        if index >= job.args.count {
            return (created, errors);
        }
        let id = job.args.device_id.replace("{i}", &index.to_string());
        let body = json!({
            "deviceId": id,
            "authentication": {
                "type": "sas",
                "symmetricKey": {
                    "primaryKey": device_key(&job.args.key_seed, &id),
                    "secondaryKey": device_key(&job.args.key_seed, &format!("{id}/secondary")),
                },
            },
        })
        .to_string();
        let mut last_error = None;
        for _ in 0..ATTEMPTS {
            match put_device(&job, &mut conn, index, &id, body.as_bytes()).await {
                Ok(()) => {
                    last_error = None;
                    break;
                }
                Err(e) => {
                    conn = None;
                    last_error = Some(e);
                }
            }
        }
        match last_error {
            None => created += 1,
            Some(e) => errors.add(&e),
        }
    }
}

async fn put_device(
    job: &Job,
    conn: &mut Option<Connection>,
    index: usize,
    id: &str,
    body: &[u8],
) -> anyhow::Result<()> {
    if conn.is_none() {
        *conn = Some(Connection::new(job.target.connect(index).await?));
    }
    let http = conn.as_mut().expect("connected above");
    let path = format!("/devices/{id}?api-version={API_VERSION}");
    let headers = [
        ("Host", job.host.as_str()),
        ("Authorization", job.authorization.as_str()),
    ];
    let response = tokio::time::timeout(
        job.target.timeout(),
        http.send("PUT", &path, &headers, body),
    )
    .await
    .context("request timed out")??;
    if !(200..300).contains(&response.status) {
        bail!(
            "PUT {path}: HTTP {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
    }
    Ok(())
}

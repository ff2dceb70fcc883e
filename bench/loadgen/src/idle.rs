//! `idle`: opens many MQTT/TLS connections and keeps them idle (pinging at half the
//! keep-alive), then reports how many are up and, given the server's pid, how much resident
//! memory the server gained per connection.
//!
//! Every holder task ends when the run stops it (after the measurement and the optional hold),
//! or when its connection fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use spoke_mqtt::codec::Packet;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::client::Client;
use crate::fleet::{self, FleetArgs};
use crate::identity::{Identities, IdentityArgs};
use crate::proc::vm_rss_kb;
use crate::stats::Errors;
use crate::target::{Target, TargetArgs};

/// Options of `idle`.
#[derive(Debug, clap::Args)]
pub struct IdleArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(flatten)]
    fleet: FleetArgs,
    /// Number of connections.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Pid of the server, whose VmRSS is read before connecting and after settling.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Seconds to wait after the last connect before measuring.
    #[arg(long, default_value_t = 3)]
    settle_secs: u64,
    /// Seconds to keep the connections open after measuring.
    #[arg(long, default_value_t = 0)]
    hold_secs: u64,
}

/// Runs `idle` and returns its report.
pub async fn run(args: IdleArgs) -> anyhow::Result<Value> {
    let target = Target::new(&args.target)?;
    let ids = Identities::new(&args.identity, target.server_name())?;
    let identities = (0..args.connections)
        .map(|i| ids.get(i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rss_before = args.server_pid.map(vm_rss_kb).transpose()?;
    let alive = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = watch::channel(false);
    let ping_every = Duration::from_secs(u64::from(args.fleet.keep_alive.max(2)) / 2);
    let mut holders = JoinSet::new();
    eprintln!("idle: connecting {} clients", args.connections);
    let connect = fleet::connect_all(&target, identities, &args.fleet, |_, client| {
        alive.fetch_add(1, Ordering::Relaxed);
        holders.spawn(hold(
            client,
            ping_every,
            stopped.clone(),
            Arc::clone(&alive),
        ));
    })
    .await;
    eprintln!(
        "idle: {} connected in {:.1} s, {} failed; settling",
        connect.connected,
        connect.elapsed.as_secs_f64(),
        connect.errors.total()
    );
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let alive_at_measure = alive.load(Ordering::Relaxed);
    let rss_after = args.server_pid.map(vm_rss_kb).transpose()?;
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    let _ = stop.send(true);
    let mut run_errors = Errors::default();
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(joined) = holders.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(e)) => run_errors.add(&e),
                Err(e) => run_errors.add(&anyhow::Error::new(e)),
            }
        }
    })
    .await;
    if drained.is_err() {
        holders.abort_all();
    }
    let per_conn = match (rss_before, rss_after) {
        (Some(before), Some(after)) if alive_at_measure > 0 => {
            Some((after as f64 - before as f64) / alive_at_measure as f64)
        }
        _ => None,
    };
    Ok(json!({
        "mode": "idle",
        "connections": args.connections,
        "connected": connect.connected,
        "alive_at_measure": alive_at_measure,
        "connect_secs": connect.elapsed.as_secs_f64(),
        "server_rss_before_kb": rss_before,
        "server_rss_after_kb": rss_after,
        "server_kb_per_conn": per_conn,
        "connect_errors": connect.errors.to_json(),
        "run_errors": run_errors.to_json(),
    }))
}

/// Keeps one connection open: PINGREQ every `ping_every`, until `stop` turns true (then
/// DISCONNECT) or the connection fails. The sender only ever sends `true`, so any change
/// means stop.
async fn hold(
    mut client: Client,
    ping_every: Duration,
    mut stop: watch::Receiver<bool>,
    alive: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let result = async {
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    client.disconnect().await;
                    return Ok(());
                }
                () = tokio::time::sleep(ping_every) => {
                    client.queue(&Packet::Pingreq);
                    client.flush().await?;
                }
                packet = client.read_packet() => match packet? {
                    Some(Packet::Pingresp) => {}
                    Some(other) => anyhow::bail!("unexpected {} from the server", other.name()),
                    None => anyhow::bail!("server closed an idle connection"),
                },
            }
        }
    }
    .await;
    if result.is_err() {
        alive.fetch_sub(1, Ordering::Relaxed);
    }
    result
}

//! `ingest`: many connections publishing QoS 1 telemetry with a window of unacknowledged
//! messages each; measures acknowledged messages per second and publish→PUBACK latency.
//!
//! Timeline (one for all connections, fixed once every connection is up): publish from the
//! start, count only PUBACKs that arrive within `[start + warm-up, start + warm-up + duration)`,
//! stop publishing at the end of that window, then wait at most `drain` for the PUBACKs still
//! owed and disconnect. Every connection task therefore ends by itself.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use spoke_mqtt::codec::{Packet, PacketId, Publish, QosPid};
use tokio::task::JoinSet;
use tokio::time::timeout_at;

use crate::client::Client;
use crate::fleet::{self, FleetArgs};
use crate::identity::{Identities, IdentityArgs};
use crate::proc;
use crate::stats::{Errors, Latencies};
use crate::target::{Target, TargetArgs};

/// Options of `ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(flatten)]
    fleet: FleetArgs,
    /// Number of connections (devices).
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Payload size of each message in bytes.
    #[arg(long, default_value_t = 200)]
    payload_size: usize,
    /// Unacknowledged messages allowed per connection.
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Seconds of publishing before measuring starts.
    #[arg(long, default_value_t = 5)]
    warmup_secs: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 20)]
    duration_secs: u64,
    /// Seconds allowed after the measurement for owed PUBACKs.
    #[arg(long, default_value_t = 10)]
    drain_secs: u64,
    /// Pid of the server, whose CPU time over the measured window is reported.
    #[arg(long)]
    server_pid: Option<u32>,
}

/// When a connection publishes and what it counts.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    measure_from: Instant,
    measure_until: Instant,
    drain_until: Instant,
}

/// What one connection did.
#[derive(Debug, Default)]
struct Outcome {
    sent: u64,
    acked_in_window: u64,
    latencies: Latencies,
    unacked_at_end: usize,
    errors: Errors,
}

/// Runs `ingest` and returns its report.
pub async fn run(args: IngestArgs) -> anyhow::Result<Value> {
    let target = Target::new(&args.target)?;
    let ids = Identities::new(&args.identity, target.server_name())?;
    let identities = (0..args.connections)
        .map(|i| ids.get(i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let topics: Vec<String> = identities.iter().map(|id| id.topic.clone()).collect();
    let mut clients = Vec::with_capacity(args.connections);
    eprintln!("ingest: connecting {} clients", args.connections);
    let connect = fleet::connect_all(&target, identities, &args.fleet, |index, client| {
        clients.push((index, client));
    })
    .await;
    eprintln!(
        "ingest: {} connected in {:.1} s, {} failed; publishing",
        connect.connected,
        connect.elapsed.as_secs_f64(),
        connect.errors.total()
    );

    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup_secs);
    let measure_until = measure_from + Duration::from_secs(args.duration_secs);
    let schedule = Schedule {
        measure_from,
        measure_until,
        drain_until: measure_until + Duration::from_secs(args.drain_secs),
    };
    let cpu = tokio::spawn(cpu_over_window(args.server_pid, schedule));
    let payload = payload(args.payload_size);
    let mut tasks = JoinSet::new();
    for (index, client) in clients {
        let topic = topics[index].clone();
        let payload = payload.clone();
        let window = args.window.clamp(1, 65_535);
        tasks.spawn(publish_loop(client, topic, payload, window, schedule));
    }
    let mut total = Outcome::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(outcome) => {
                total.sent += outcome.sent;
                total.acked_in_window += outcome.acked_in_window;
                total.unacked_at_end += outcome.unacked_at_end;
                total.latencies.merge(outcome.latencies);
                total.errors.merge(outcome.errors);
            }
            Err(e) => total.errors.add(&anyhow::Error::new(e)),
        }
    }
    let window_secs = args.duration_secs.max(1) as f64;
    let rate = total.acked_in_window as f64 / window_secs;
    let (server_cpu, client_cpu) = cpu.await.unwrap_or((None, None));
    Ok(json!({
        "mode": "ingest",
        "connections": args.connections,
        "connected": connect.connected,
        "connect_secs": connect.elapsed.as_secs_f64(),
        "payload_size": args.payload_size,
        "window": args.window,
        "warmup_secs": args.warmup_secs,
        "duration_secs": args.duration_secs,
        "sent": total.sent,
        "acked_in_window": total.acked_in_window,
        "msgs_per_sec": rate,
        "p50_ms": total.latencies.quantile_ms(0.50),
        "p99_ms": total.latencies.quantile_ms(0.99),
        "unacked_at_end": total.unacked_at_end,
        "server_cpu_cores": server_cpu.map(|s| s / window_secs),
        "client_cpu_cores": client_cpu.map(|s| s / window_secs),
        "msgs_per_server_cpu_sec": server_cpu.map(|s| total.acked_in_window as f64 / s),
        "connect_errors": connect.errors.to_json(),
        "run_errors": total.errors.to_json(),
    }))
}

/// CPU seconds the server (if its pid is known) and this process used over the measured
/// window.
async fn cpu_over_window(server: Option<u32>, schedule: Schedule) -> (Option<f64>, Option<f64>) {
    let sample = || {
        (
            server.and_then(|pid| proc::cpu_secs(pid).ok()),
            proc::cpu_secs(std::process::id()).ok(),
        )
    };
    tokio::time::sleep_until(schedule.measure_from.into()).await;
    let before = sample();
    tokio::time::sleep_until(schedule.measure_until.into()).await;
    let after = sample();
    let delta = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
    (delta(after.0, before.0), delta(after.1, before.1))
}

/// A JSON payload of exactly `size` bytes where possible (`{"p":"xxx…"}`).
fn payload(size: usize) -> Bytes {
    const FRAME: usize = r#"{"p":""}"#.len();
    if size < FRAME {
        return Bytes::from(vec![b'x'; size]);
    }
    Bytes::from(format!(r#"{{"p":"{}"}}"#, "x".repeat(size - FRAME)))
}

/// One connection's publishing: keeps `window` QoS 1 PUBLISHes unacknowledged until the
/// measurement ends, then collects the owed PUBACKs until the drain deadline.
async fn publish_loop(
    mut client: Client,
    topic: String,
    payload: Bytes,
    window: usize,
    schedule: Schedule,
) -> Outcome {
    let mut out = Outcome::default();
    let mut inflight: HashMap<u16, Instant> = HashMap::with_capacity(window);
    let mut next_id: u16 = 1;
    loop {
        let now = Instant::now();
        let publishing = now < schedule.measure_until;
        if publishing {
            while inflight.len() < window {
                while inflight.contains_key(&next_id) {
                    next_id = next_id.checked_add(1).unwrap_or(1);
                }
                let id = PacketId::new(next_id).expect("packet ids skip zero");
                next_id = next_id.checked_add(1).unwrap_or(1);
                client.queue(&Packet::Publish(Publish {
                    dup: false,
                    qos_pid: QosPid::AtLeastOnce(id),
                    retain: false,
                    topic: topic.clone(),
                    payload: payload.clone(),
                }));
                inflight.insert(id.get(), now);
                out.sent += 1;
            }
            if let Err(e) = client.flush().await {
                out.errors.add(&e);
                break;
            }
        } else if inflight.is_empty() || now >= schedule.drain_until {
            break;
        }
        let deadline = if publishing {
            schedule.measure_until
        } else {
            schedule.drain_until
        };
        let packet = match timeout_at(deadline.into(), client.read_packet()).await {
            Err(_elapsed) => continue,
            Ok(Ok(Some(packet))) => packet,
            Ok(Ok(None)) => {
                out.errors
                    .add(&anyhow::anyhow!("server closed the connection"));
                break;
            }
            Ok(Err(e)) => {
                out.errors.add(&e);
                break;
            }
        };
        let mut next = Some(packet);
        while let Some(packet) = next {
            on_packet(&packet, &mut inflight, &schedule, &mut out);
            next = match client.buffered_packet() {
                Ok(p) => p,
                Err(e) => {
                    out.errors.add(&e);
                    out.unacked_at_end = inflight.len();
                    return out;
                }
            };
        }
    }
    out.unacked_at_end = inflight.len();
    let _ = tokio::time::timeout(Duration::from_secs(2), client.disconnect()).await;
    out
}

fn on_packet(
    packet: &Packet,
    inflight: &mut HashMap<u16, Instant>,
    schedule: &Schedule,
    out: &mut Outcome,
) {
    let now = Instant::now();
    match packet {
        Packet::Puback(id) => match inflight.remove(&id.get()) {
            Some(sent_at) => {
                if now >= schedule.measure_from && now < schedule.measure_until {
                    out.acked_in_window += 1;
                    out.latencies.add(now - sent_at);
                }
            }
            None => out
                .errors
                .add(&anyhow::anyhow!("PUBACK for an unknown packet id")),
        },
        Packet::Pingresp => {}
        other => out.errors.add(&anyhow::anyhow!(
            "unexpected {} from the server",
            other.name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_requested_size() {
        for size in [0, 3, 8, 9, 200, 1000] {
            assert_eq!(payload(size).len(), size);
        }
        assert_eq!(&payload(10)[..], br#"{"p":"xx"}"#);
    }
}

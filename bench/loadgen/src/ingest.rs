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
    #[command(flatten)]
    load: LoadArgs,
}

/// How the publishing modes publish and measure.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Payload size of each message in bytes.
    #[arg(long, default_value_t = 200)]
    pub payload_size: usize,
    /// Unacknowledged messages allowed per publishing connection.
    #[arg(long, default_value_t = 16)]
    pub window: usize,
    /// Seconds of publishing before measuring starts.
    #[arg(long, default_value_t = 5)]
    pub warmup_secs: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 20)]
    pub duration_secs: u64,
    /// Seconds allowed after the measurement for what is still owed.
    #[arg(long, default_value_t = 10)]
    pub drain_secs: u64,
    /// Pid of the server, whose CPU time over the measured window is reported.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

impl LoadArgs {
    /// The timeline, starting now.
    pub fn schedule(&self) -> Schedule {
        Schedule::starting_now(
            Duration::from_secs(self.warmup_secs),
            Duration::from_secs(self.duration_secs),
            Duration::from_secs(self.drain_secs),
        )
    }

    /// The window, within what MQTT packet ids allow.
    pub fn window(&self) -> usize {
        self.window.clamp(1, 65_535)
    }

    /// The measured window in seconds.
    pub fn window_secs(&self) -> f64 {
        self.duration_secs.max(1) as f64
    }
}

/// When a connection publishes and what it counts.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Start of the measured window.
    pub measure_from: Instant,
    /// End of the measured window, when publishing stops.
    pub measure_until: Instant,
    /// Deadline for what is still owed after the window.
    pub drain_until: Instant,
}

impl Schedule {
    /// A schedule starting now: `warmup` unmeasured, `duration` measured, `drain` to finish.
    pub fn starting_now(warmup: Duration, duration: Duration, drain: Duration) -> Self {
        let measure_from = Instant::now() + warmup;
        let measure_until = measure_from + duration;
        Self {
            measure_from,
            measure_until,
            drain_until: measure_until + drain,
        }
    }

    /// Whether `at` falls in the measured window.
    pub fn measures(&self, at: Instant) -> bool {
        at >= self.measure_from && at < self.measure_until
    }
}

/// What one publishing connection did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// PUBLISHes sent.
    pub sent: u64,
    /// PUBACKs received in the measured window.
    pub acked_in_window: u64,
    /// PUBLISH→PUBACK latencies of those.
    pub latencies: Latencies,
    /// PUBLISHes never acknowledged.
    pub unacked_at_end: usize,
    /// What went wrong.
    pub errors: Errors,
}

impl Outcome {
    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: Outcome) {
        self.sent += other.sent;
        self.acked_in_window += other.acked_in_window;
        self.unacked_at_end += other.unacked_at_end;
        self.latencies.merge(other.latencies);
        self.errors.merge(other.errors);
    }
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

    let load = &args.load;
    let schedule = load.schedule();
    let cpu = tokio::spawn(cpu_over_window(load.server_pid, schedule));
    let payload = payload(load.payload_size);
    let mut tasks = JoinSet::new();
    for (index, client) in clients {
        let topic = topics[index].clone();
        let payload = payload.clone();
        tasks.spawn(publish_loop(
            client,
            topic,
            move || payload.clone(),
            load.window(),
            schedule,
        ));
    }
    let mut total = join_outcomes(tasks).await;
    let window_secs = load.window_secs();
    let rate = total.acked_in_window as f64 / window_secs;
    let (server_cpu, client_cpu) = cpu.await.unwrap_or((None, None));
    Ok(json!({
        "mode": "ingest",
        "connections": args.connections,
        "connected": connect.connected,
        "connect_secs": connect.elapsed.as_secs_f64(),
        "payload_size": load.payload_size,
        "window": load.window,
        "warmup_secs": load.warmup_secs,
        "duration_secs": load.duration_secs,
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

/// The merged outcomes of publishing tasks.
pub async fn join_outcomes(mut tasks: JoinSet<Outcome>) -> Outcome {
    let mut total = Outcome::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(outcome) => total.merge(outcome),
            Err(e) => total.errors.add(&anyhow::Error::new(e)),
        }
    }
    total
}

/// CPU seconds the server (if its pid is known) and this process used over the measured
/// window.
pub async fn cpu_over_window(
    server: Option<u32>,
    schedule: Schedule,
) -> (Option<f64>, Option<f64>) {
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
pub fn payload(size: usize) -> Bytes {
    padded_json("", size)
}

/// `{FIELDS"p":"xxx…"}` (`fields` empty or ending in a comma), padded to `size` bytes where
/// possible; when `size` is too small, the shortest such object or, without fields, `size`
/// bytes of `x`.
pub fn padded_json(fields: &str, size: usize) -> Bytes {
    let frame = r#"{"p":""}"#.len() + fields.len();
    if size < frame && fields.is_empty() {
        return Bytes::from(vec![b'x'; size]);
    }
    let pad = "x".repeat(size.saturating_sub(frame));
    Bytes::from(format!(r#"{{{fields}"p":"{pad}"}}"#))
}

/// One connection's publishing: keeps `window` QoS 1 PUBLISHes (payloads from `next_payload`)
/// unacknowledged until the measurement ends, then collects the owed PUBACKs until the drain
/// deadline.
pub async fn publish_loop(
    mut client: Client,
    topic: String,
    mut next_payload: impl FnMut() -> Bytes,
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
                    payload: next_payload(),
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
        let packets = match timeout_at(deadline.into(), client.read_burst()).await {
            Err(_elapsed) => continue,
            Ok(Ok(packets)) => packets,
            Ok(Err(e)) => {
                out.errors.add(&e);
                break;
            }
        };
        for packet in &packets {
            on_packet(packet, &mut inflight, &schedule, &mut out);
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
                if schedule.measures(now) {
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
        assert_eq!(&padded_json(r#""s":1,"#, 16)[..], br#"{"s":1,"p":"xx"}"#);
        assert_eq!(&padded_json(r#""s":1,"#, 3)[..], br#"{"s":1,"p":""}"#);
    }
}

//! `relay`: publishers send QoS 1 messages that the server relays to one QoS 1 subscriber;
//! measures delivered messages per second and publish→delivery latency (a broker's publish →
//! subscribe, or an edge hub's module output → route → module input).
//!
//! Each payload is JSON stamped with its publisher, a sequence number and the send time
//! (`{"c":0,"s":1,"t":NANOS,"p":"xx…"}`, never shorter than the stamp, about 50 bytes), so the
//! subscriber measures latency on the same clock and counts what arrived more than once (or
//! out of order) and what never arrived.
//!
//! Timeline as in `ingest`: the subscriber is up and subscribed first; publishers publish from
//! the start until the end of the measured window; deliveries are counted when they arrive in
//! the window. Afterwards the subscriber waits, at most until the drain deadline, for everything
//! sent.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use spoke_mqtt::codec::{Packet, PacketId, QoS, QosPid, SubackCode, Subscribe};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::timeout_at;

use crate::client::Client;
use crate::fleet::{self, FleetArgs};
use crate::identity::{Identities, IdentityArgs};
use crate::ingest::{self, LoadArgs, Schedule};
use crate::stats::{Errors, Latencies};
use crate::target::{Target, TargetArgs};

/// Options of `relay`. The publishers' identities come from the usual identity options
/// (`--client-id`, `--topic`, ...); the subscriber's from the `--sub-*` options.
#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(flatten)]
    fleet: FleetArgs,
    /// Number of publishing connections.
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Client id of the subscriber.
    #[arg(long)]
    sub_client_id: String,
    /// User name of the subscriber (same templates as `--username`); empty sends none.
    #[arg(long, default_value = "")]
    sub_username: String,
    /// SAS key (base64) that signs the subscriber's token; needs `--sub-username`.
    #[arg(long)]
    sub_sas_key: Option<String>,
    /// Topic filter the subscriber subscribes to at QoS 1.
    #[arg(long)]
    sub_filter: String,
    #[command(flatten)]
    load: LoadArgs,
}

/// What the subscriber received.
#[derive(Debug, Default)]
struct Received {
    /// First deliveries of a message (per publisher, a sequence number above the last seen).
    unique: u64,
    /// Unique deliveries that arrived in the measured window.
    in_window: u64,
    /// Publish→delivery latencies of those.
    latencies: Latencies,
    /// Deliveries of a sequence number at or below the last one seen from its publisher
    /// (redeliveries, or reordering).
    repeated: u64,
    errors: Errors,
}

/// Runs `relay` and returns its report.
pub async fn run(args: RelayArgs) -> anyhow::Result<Value> {
    let target = Target::new(&args.target)?;
    let host = target.server_name();
    let sub_args = IdentityArgs {
        client_id: args.sub_client_id.clone(),
        username: args.sub_username.clone(),
        topic: args.sub_filter.clone(),
        sas_key_seed: None,
        sas_key: args.sub_sas_key.clone(),
        sas_ttl_secs: args.identity.sas_ttl_secs,
        hub_hostname: args.identity.hub_hostname.clone(),
    };
    let sub_identity = Identities::new(&sub_args, host.clone())?.get(0)?;
    let mut subscriber = Client::connect(&target, 0, &sub_identity, args.fleet.keep_alive)
        .await
        .context("subscriber")?;
    subscribe(&mut subscriber, &args.sub_filter, &target).await?;

    let ids = Identities::new(&args.identity, host)?;
    let identities = (0..args.publishers)
        .map(|i| ids.get(i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let topics: Vec<String> = identities.iter().map(|id| id.topic.clone()).collect();
    let mut publishers = Vec::with_capacity(args.publishers);
    let connect = fleet::connect_all(&target, identities, &args.fleet, |index, client| {
        publishers.push((index, client));
    })
    .await;
    if connect.connected == 0 {
        bail!("no publisher connected: {}", connect.errors.to_json());
    }
    eprintln!(
        "relay: subscriber and {} publisher(s) connected; publishing",
        connect.connected
    );

    let load = &args.load;
    let schedule = load.schedule();
    let cpu = tokio::spawn(ingest::cpu_over_window(load.server_pid, schedule));
    let (sent_tx, sent_rx) = watch::channel(None);
    let receiving = tokio::spawn(receive_loop(subscriber, schedule, sent_rx));
    let mut tasks = JoinSet::new();
    for (index, client) in publishers {
        let topic = topics[index].clone();
        let size = load.payload_size;
        let mut seq = 0_u64;
        let next_payload = move || {
            seq += 1;
            stamped_payload(index, seq, size)
        };
        tasks.spawn(ingest::publish_loop(
            client,
            topic,
            next_payload,
            load.window(),
            schedule,
        ));
    }
    let published = ingest::join_outcomes(tasks).await;
    let _ = sent_tx.send(Some(published.sent));
    let mut received = match receiving.await {
        Ok(received) => received,
        Err(e) => bail!("the subscriber task failed: {e}"),
    };
    let mut pub_latencies = published.latencies;
    let window_secs = load.window_secs();
    let (server_cpu, client_cpu) = cpu.await.unwrap_or((None, None));
    Ok(json!({
        "mode": "relay",
        "publishers": args.publishers,
        "connected": connect.connected,
        "payload_size": load.payload_size,
        "window": load.window,
        "warmup_secs": load.warmup_secs,
        "duration_secs": load.duration_secs,
        "sent": published.sent,
        "puback_in_window": published.acked_in_window,
        "puback_p50_ms": pub_latencies.quantile_ms(0.50),
        "puback_p99_ms": pub_latencies.quantile_ms(0.99),
        "delivered_in_window": received.in_window,
        "msgs_per_sec": received.in_window as f64 / window_secs,
        "p50_ms": received.latencies.quantile_ms(0.50),
        "p99_ms": received.latencies.quantile_ms(0.99),
        "delivered": received.unique,
        "missing": published.sent.saturating_sub(received.unique),
        "repeated": received.repeated,
        "unacked_at_end": published.unacked_at_end,
        "server_cpu_cores": server_cpu.map(|s| s / window_secs),
        "client_cpu_cores": client_cpu.map(|s| s / window_secs),
        "msgs_per_server_cpu_sec": server_cpu.map(|s| received.in_window as f64 / s),
        "connect_errors": connect.errors.to_json(),
        "publish_errors": published.errors.to_json(),
        "receive_errors": received.errors.to_json(),
    }))
}

/// Subscribes `client` to `filter` at QoS 1 and waits for the grant.
async fn subscribe(client: &mut Client, filter: &str, target: &Target) -> anyhow::Result<()> {
    let packet_id = PacketId::new(1).expect("1 is a packet id");
    client.queue(&Packet::Subscribe(Subscribe {
        packet_id,
        filters: vec![(filter.to_owned(), QoS::AtLeastOnce)],
    }));
    client.flush().await?;
    let reply = tokio::time::timeout(target.timeout(), client.read_packet())
        .await
        .context("no SUBACK in time")??;
    match reply {
        Some(Packet::Suback(ack)) if ack.codes.first() == Some(&SubackCode::Failure) => {
            bail!("subscription to {filter} refused")
        }
        Some(Packet::Suback(_)) => Ok(()),
        Some(other) => bail!("expected SUBACK, got {}", other.name()),
        None => bail!("connection closed before SUBACK"),
    }
}

/// The subscriber: acknowledges and counts deliveries until everything sent (known once the
/// publishers are done) has arrived, or the drain deadline.
async fn receive_loop(
    mut client: Client,
    schedule: Schedule,
    mut sent: watch::Receiver<Option<u64>>,
) -> Received {
    let mut out = Received::default();
    let mut last_seq: HashMap<u64, u64> = HashMap::new();
    loop {
        if sent.borrow().is_some_and(|total| out.unique >= total) {
            break;
        }
        let packets = tokio::select! {
            read = timeout_at(schedule.drain_until.into(), client.read_burst()) => read,
            changed = sent.changed() => {
                if changed.is_err() {
                    break;
                }
                continue;
            }
        };
        let packets = match packets {
            Err(_elapsed) => break,
            Ok(Ok(packets)) => packets,
            Ok(Err(e)) => {
                out.errors.add(&e);
                break;
            }
        };
        for packet in &packets {
            on_delivery(&mut client, packet, &schedule, &mut last_seq, &mut out);
        }
        if let Err(e) = client.flush().await {
            out.errors.add(&e);
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), client.disconnect()).await;
    out
}

fn on_delivery(
    client: &mut Client,
    packet: &Packet,
    schedule: &Schedule,
    last_seq: &mut HashMap<u64, u64>,
    out: &mut Received,
) {
    let now = Instant::now();
    let publish = match packet {
        Packet::Publish(publish) => publish,
        Packet::Pingresp => return,
        other => {
            out.errors.add(&anyhow::anyhow!(
                "unexpected {} from the server",
                other.name()
            ));
            return;
        }
    };
    if let QosPid::AtLeastOnce(id) = publish.qos_pid {
        client.queue(&Packet::Puback(id));
    }
    let Some((conn, seq, sent_at)) = parse_stamp(&publish.payload) else {
        out.errors.add(&anyhow::anyhow!(
            "a delivery on {} without a stamp",
            publish.topic
        ));
        return;
    };
    let last = last_seq.entry(conn).or_insert(0);
    if seq <= *last {
        out.repeated += 1;
        return;
    }
    *last = seq;
    out.unique += 1;
    if schedule.measures(now) {
        out.in_window += 1;
        out.latencies.add(now.saturating_duration_since(sent_at));
    }
}

/// The instant every stamp counts from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// A payload of `size` bytes (or the stamp alone, when longer) stamped with publisher `conn`,
/// sequence number `seq` and the time now.
fn stamped_payload(conn: usize, seq: u64, size: usize) -> bytes::Bytes {
    let nanos = Instant::now().duration_since(epoch()).as_nanos();
    ingest::padded_json(&format!(r#""c":{conn},"s":{seq},"t":{nanos},"#), size)
}

/// Publisher, sequence number and send time of a stamped payload.
fn parse_stamp(payload: &[u8]) -> Option<(u64, u64, Instant)> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    let nanos = value.get("t")?.as_u64()?;
    Some((
        value.get("c")?.as_u64()?,
        value.get("s")?.as_u64()?,
        epoch() + Duration::from_nanos(nanos),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back() {
        let before = Instant::now();
        let payload = stamped_payload(3, 42, 200);
        assert_eq!(payload.len(), 200);
        let (conn, seq, at) = parse_stamp(&payload).unwrap();
        assert_eq!((conn, seq), (3, 42));
        assert!(at + Duration::from_millis(1) >= before && at <= Instant::now());
        assert!(parse_stamp(b"{\"p\":\"x\"}").is_none());
        assert!(parse_stamp(b"not json").is_none());
    }
}

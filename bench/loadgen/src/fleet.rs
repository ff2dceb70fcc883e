//! Opening many MQTT connections with bounded concurrency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::client::Client;
use crate::identity::Identity;
use crate::stats::Errors;
use crate::target::Target;

/// Options of the connect phase.
#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 50)]
    pub connect_concurrency: usize,
    /// MQTT keep-alive sent in CONNECT, in seconds.
    #[arg(long, default_value_t = 60)]
    pub keep_alive: u16,
}

/// What the connect phase did.
#[derive(Debug)]
pub struct ConnectSummary {
    /// Connections accepted.
    pub connected: usize,
    /// Failed attempts, by message.
    pub errors: Errors,
    /// Time the whole phase took.
    pub elapsed: Duration,
}

/// Connects `identities` (connection `i` gets `identities[i]`), at most `args.connect_concurrency`
/// at a time, handing each accepted client to `on_connected` as soon as it is up.
pub async fn connect_all(
    target: &Target,
    identities: Vec<Identity>,
    args: &FleetArgs,
    mut on_connected: impl FnMut(usize, Client),
) -> ConnectSummary {
    let started = Instant::now();
    let keep_alive = args.keep_alive;
    let mut pending = identities.into_iter().enumerate();
    let mut running = JoinSet::new();
    let mut summary = ConnectSummary {
        connected: 0,
        errors: Errors::default(),
        elapsed: Duration::ZERO,
    };
    let target = Arc::new(target.clone());
    loop {
        while running.len() < args.connect_concurrency.max(1) {
            let Some((index, identity)) = pending.next() else {
                break;
            };
            let target = Arc::clone(&target);
            running.spawn(async move {
                let client = Client::connect(&target, index, &identity, keep_alive).await;
                (index, client)
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        match joined {
            Ok((index, Ok(client))) => {
                summary.connected += 1;
                on_connected(index, client);
            }
            Ok((_, Err(e))) => summary.errors.add(&e),
            Err(e) => summary.errors.add(&anyhow::Error::new(e)),
        }
    }
    summary.elapsed = started.elapsed();
    summary
}

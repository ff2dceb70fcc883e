//! Append throughput of the durable log with real `fdatasync`: many concurrent appenders of
//! small records, then one reader over everything.
//!
//! ```text
//! cargo run --release -p spoke-store --example log_bench -- \
//!     [--appenders 1000] [--records 1000000] [--size 200] [--batch 1] [--dir DIR]
//! ```
//!
//! `--batch N` makes each appender use `append_batch` with N records instead of `append`.
//! Without `--dir` the log goes to a temporary directory next to the system's temp files.

use std::time::{Duration, Instant};

use bytes::Bytes;
use spoke_store::log::{LogConfig, LogHandle, ReadEvent};

struct Args {
    appenders: usize,
    records: usize,
    size: usize,
    batch: usize,
    dir: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        appenders: 1000,
        records: 1_000_000,
        size: 200,
        batch: 1,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--appenders" => args.appenders = number()?.max(1),
            "--records" => args.records = number()?,
            "--size" => args.size = number()?,
            "--batch" => args.batch = number()?.max(1),
            "--dir" => args.dir = Some(value.into()),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args().map_err(anyhow::Error::msg)?;
    let scratch = tempfile::tempdir()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| scratch.path().join("log"));
    let log = LogHandle::open(
        &dir,
        LogConfig {
            retention: None,
            ..LogConfig::default()
        },
    )
    .await?;
    let payload = Bytes::from(vec![b'x'; args.size]);
    let per_task = args.records / args.appenders;
    let total = per_task * args.appenders;

    let started = Instant::now();
    let tasks: Vec<_> = (0..args.appenders)
        .map(|_| {
            let (log, payload, batch) = (log.clone(), payload.clone(), args.batch);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task / batch + 1);
                let mut left = per_task;
                while left > 0 {
                    let n = left.min(batch);
                    let t = Instant::now();
                    if n == 1 {
                        log.append(payload.clone(), 0).await?;
                    } else {
                        log.append_batch(vec![(payload.clone(), 0); n]).await?;
                    }
                    latencies.push(t.elapsed());
                    left -= n;
                }
                Ok::<_, spoke_store::log::LogError>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(Duration::ZERO)
    };
    println!(
        "append: {total} records of {} bytes, {} appenders, batch {}: {:.2?}, {:.0} records/s, latency p50 {:.2?} p99 {:.2?} max {:.2?}",
        args.size,
        args.appenders,
        args.batch,
        elapsed,
        total as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
    );

    let started = Instant::now();
    let mut reader = log.read_from(0);
    let mut read = 0;
    while let Some(event) = reader.try_next().await? {
        if let ReadEvent::Record(record) = event {
            read += record.payload.len().min(1);
        }
    }
    let elapsed = started.elapsed();
    println!(
        "read: {read} records in {elapsed:.2?}, {:.0} records/s",
        read as f64 / elapsed.as_secs_f64()
    );
    log.close().await?;
    Ok(())
}

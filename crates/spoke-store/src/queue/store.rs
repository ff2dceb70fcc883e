//! The store: the directory of endpoint queues, their shared disk budget, space reclamation
//! and the periodic cursor flush.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use super::endpoint::EndpointQueue;
use super::files::{self, blocking};
use super::{QueueConfig, QueueError, codec};

/// A directory of named endpoint queues sharing one disk budget. Cheap to clone; all clones
/// share the same store. Dropping every clone without [`QueueStore::close`] behaves like a
/// crash as far as unpersisted acknowledgements go.
#[derive(Debug, Clone)]
pub struct QueueStore {
    inner: Arc<StoreInner>,
}

/// State shared by the store's handles and (weakly) its endpoints.
#[derive(Debug)]
pub(crate) struct StoreInner {
    dir: PathBuf,
    config: QueueConfig,
    endpoints: Mutex<BTreeMap<String, EndpointQueue>>,
    /// Serializes creating, removing and closing endpoints.
    changing: tokio::sync::Mutex<()>,
    /// Bytes reserved by enqueues in progress.
    inflight: AtomicU64,
    /// Serializes reclaims; `reclaims` counts the finished ones.
    reclaiming: tokio::sync::Mutex<()>,
    reclaims: AtomicU64,
    closed: AtomicBool,
    /// Holds the advisory lock on `.lock` until the store is closed or dropped.
    lock: Mutex<Option<File>>,
}

/// Bytes of the budget held by one enqueue in progress; released on drop.
#[derive(Debug)]
pub(crate) struct Reservation {
    store: Arc<StoreInner>,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.store.inflight.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl QueueStore {
    /// Opens the store in `dir` (created if missing) and every endpoint queue in it. Must be
    /// called within a tokio runtime.
    pub async fn open(dir: impl Into<PathBuf>, config: QueueConfig) -> Result<Self, QueueError> {
        validate(&config)?;
        let dir = dir.into();
        let (lock, found) = blocking({
            let dir = dir.clone();
            move || files::prepare_store(&dir)
        })
        .await?;
        let inner = Arc::new(StoreInner {
            dir,
            config,
            endpoints: Mutex::new(BTreeMap::new()),
            changing: tokio::sync::Mutex::new(()),
            inflight: AtomicU64::new(0),
            reclaiming: tokio::sync::Mutex::new(()),
            reclaims: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            lock: Mutex::new(Some(lock)),
        });
        for (name, path) in found {
            let endpoint = inner.open_endpoint(name.clone(), path).await?;
            inner.endpoints().insert(name, endpoint);
        }
        let period = inner.config.cursor_flush_interval;
        if let Some(first) = tokio::time::Instant::now().checked_add(period)
            && !period.is_zero()
        {
            tokio::spawn(flush_periodically(Arc::downgrade(&inner), first, period));
        }
        Ok(Self { inner })
    }

    /// The queue of endpoint `name`, created if it does not exist. Any non-empty string is a
    /// valid name (it is encoded into a directory name, see the module doc of [`super`]) as
    /// long as its encoding is at most 200 bytes.
    pub async fn endpoint(&self, name: &str) -> Result<EndpointQueue, QueueError> {
        self.check_open()?;
        if let Some(endpoint) = self.inner.endpoints().get(name) {
            return Ok(endpoint.clone());
        }
        let encoded = codec::encode_name(name).map_err(|reason| QueueError::InvalidName {
            name: name.to_owned(),
            reason: reason.to_string(),
        })?;
        let _changing = self.inner.changing.lock().await;
        self.check_open()?;
        if let Some(endpoint) = self.inner.endpoints().get(name) {
            return Ok(endpoint.clone());
        }
        let path = self.inner.dir.join(encoded);
        blocking({
            let path = path.clone();
            move || files::create_dir(&path)
        })
        .await?;
        let endpoint = self.inner.open_endpoint(name.to_owned(), path).await?;
        self.inner
            .endpoints()
            .insert(name.to_owned(), endpoint.clone());
        Ok(endpoint)
    }

    /// The names of the endpoints, sorted.
    pub fn endpoints(&self) -> Vec<String> {
        self.inner.endpoints().keys().cloned().collect()
    }

    /// Deletes endpoint `name` and all its entries (its route was removed). Its handles then
    /// fail with [`QueueError::Removed`]. Removing an unknown endpoint does nothing.
    pub async fn remove_endpoint(&self, name: &str) -> Result<(), QueueError> {
        self.check_open()?;
        let _changing = self.inner.changing.lock().await;
        let Some(endpoint) = self.inner.endpoints().remove(name) else {
            return Ok(());
        };
        if let Err(e) = endpoint.shut(true).await {
            tracing::warn!(endpoint = name, error = %e, "error closing a removed endpoint's logs");
        }
        let Ok(encoded) = codec::encode_name(name) else {
            return Ok(());
        };
        let path = self.inner.dir.join(encoded);
        blocking(move || files::remove_endpoint_dir(&path)).await
    }

    /// Bytes of all endpoints' logs on disk (record frames).
    pub fn total_bytes(&self) -> u64 {
        self.inner.committed_bytes()
    }

    /// Reclaims space now rather than when the budget runs out: persists every cursor, marks
    /// the expired entries at the head of every priority done, and deletes what is done in
    /// whole segments (sealing fully acknowledged active segments).
    pub async fn reclaim(&self) -> Result<(), QueueError> {
        self.check_open()?;
        let _reclaiming = self.inner.reclaiming.lock().await;
        self.inner.reclaim().await
    }

    /// Persists every cursor, closes every log and releases the directory lock. Later calls
    /// on the store or its endpoints fail with [`QueueError::Closed`]; waiting consumers are
    /// woken with it.
    pub async fn close(&self) -> Result<(), QueueError> {
        let _changing = self.inner.changing.lock().await;
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let endpoints = std::mem::take(&mut *self.inner.endpoints());
        let mut result = Ok(());
        for endpoint in endpoints.values() {
            let shut = endpoint.shut(false).await;
            if result.is_ok() {
                result = shut;
            }
        }
        self.inner
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        result
    }

    fn check_open(&self) -> Result<(), QueueError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(QueueError::Closed);
        }
        Ok(())
    }
}

impl StoreInner {
    /// Reserves `bytes` of the budget for an enqueue, reclaiming space first if needed.
    pub async fn reserve(self: Arc<Self>, bytes: u64) -> Result<Reservation, QueueError> {
        if self.try_reserve(bytes).is_err() {
            let seen = self.reclaims.load(Ordering::Acquire);
            let reclaiming = self.reclaiming.lock().await;
            // Another enqueue reclaimed while this one waited: no need to scan again.
            if self.reclaims.load(Ordering::Acquire) == seen {
                self.reclaim().await?;
            }
            drop(reclaiming);
            self.try_reserve(bytes).map_err(|used| QueueError::Full {
                needed: bytes,
                used,
                limit: self.config.max_total_bytes,
            })?;
        }
        Ok(Reservation { store: self, bytes })
    }

    /// Adds `bytes` to the reservations if the budget allows; else returns the bytes in use.
    /// Committed bytes only grow by reserved appends (already counted) between the load and
    /// the exchange, so concurrent reservations never overshoot the limit.
    fn try_reserve(&self, bytes: u64) -> Result<(), u64> {
        let limit = self.config.max_total_bytes;
        let mut reserved = self.inflight.load(Ordering::Acquire);
        loop {
            let used = self.committed_bytes() + reserved;
            if used + bytes > limit {
                return Err(used);
            }
            match self.inflight.compare_exchange_weak(
                reserved,
                reserved + bytes,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => reserved = now,
            }
        }
    }

    fn committed_bytes(&self) -> u64 {
        self.endpoints()
            .values()
            .map(EndpointQueue::log_bytes)
            .sum()
    }

    /// See [`QueueStore::reclaim`]; the caller holds `reclaiming`.
    async fn reclaim(&self) -> Result<(), QueueError> {
        let now = self.config.clock.now_ms();
        for endpoint in self.snapshot() {
            endpoint.purge_expired(now).await?;
            endpoint.flush(true).await?;
        }
        self.reclaims.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    async fn open_endpoint(
        self: &Arc<Self>,
        name: String,
        path: PathBuf,
    ) -> Result<EndpointQueue, QueueError> {
        EndpointQueue::open(name, path, self.config.clone(), Arc::downgrade(self)).await
    }

    fn snapshot(&self) -> Vec<EndpointQueue> {
        self.endpoints().values().cloned().collect()
    }

    fn endpoints(&self) -> MutexGuard<'_, BTreeMap<String, EndpointQueue>> {
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Persists the endpoints' dirty cursors every `period` until the store is closed or dropped.
async fn flush_periodically(
    store: Weak<StoreInner>,
    first: tokio::time::Instant,
    period: Duration,
) {
    let mut tick = tokio::time::interval_at(first, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(store) = store.upgrade() else { return };
        if store.closed.load(Ordering::Acquire) {
            return;
        }
        for endpoint in store.snapshot() {
            if endpoint.dirty()
                && let Err(e) = endpoint.flush(false).await
            {
                tracing::warn!(endpoint = endpoint.name(), error = %e, "cannot persist the queue cursor");
            }
        }
    }
}

fn validate(config: &QueueConfig) -> Result<(), QueueError> {
    if config.max_total_bytes == 0 {
        return Err(QueueError::InvalidConfig(
            "max_total_bytes must be positive",
        ));
    }
    if config.segment_max_bytes == 0 || config.segment_max_bytes > config.max_total_bytes {
        return Err(QueueError::InvalidConfig(
            "segment_max_bytes must be positive and at most max_total_bytes",
        ));
    }
    Ok(())
}

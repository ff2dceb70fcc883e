//! The embedded [`HubStore`] backend: SQLite in WAL mode with `synchronous = FULL`.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row as _, SqlitePool};

use super::{C2dRow, HubStore, IdentityRow, StoreError, StoreFuture};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS identities (
        device_id TEXT NOT NULL,
        module_id TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (device_id, module_id))",
    "CREATE TABLE IF NOT EXISTS mqtt_sessions (
        client_id TEXT PRIMARY KEY,
        doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS c2d (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        device_id TEXT NOT NULL,
        message BLOB NOT NULL,
        expiry_ms INTEGER NOT NULL,
        delivery_count INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS c2d_device ON c2d (device_id, seq)",
    "CREATE TABLE IF NOT EXISTS settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL)",
];

/// SQLite-backed [`HubStore`] in a single database file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and its schema.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        for stmt in SCHEMA {
            sqlx::query(*stmt).execute(&pool).await?;
        }
        Ok(Self { pool })
    }

    /// Closes the pool, waiting for in-flight queries.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl HubStore for SqliteStore {
    fn load_identities(&self) -> StoreFuture<'_, Vec<IdentityRow>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT device_id, module_id, doc FROM identities ORDER BY device_id, module_id",
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|r| IdentityRow {
                    device_id: r.get(0),
                    module_id: r.get(1),
                    doc: r.get(2),
                })
                .collect())
        })
    }

    fn put_identity<'a>(&'a self, row: &'a IdentityRow) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO identities (device_id, module_id, doc) VALUES (?, ?, ?)
                 ON CONFLICT (device_id, module_id) DO UPDATE SET doc = excluded.doc",
            )
            .bind(&row.device_id)
            .bind(&row.module_id)
            .bind(&row.doc)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn delete_identity<'a>(
        &'a self,
        device_id: &'a str,
        module_id: &'a str,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            if module_id.is_empty() {
                sqlx::query("DELETE FROM identities WHERE device_id = ?")
                    .bind(device_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM c2d WHERE device_id = ?")
                    .bind(device_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "DELETE FROM mqtt_sessions
                     WHERE client_id = ?1 OR substr(client_id, 1, length(?2)) = ?2",
                )
                .bind(device_id)
                .bind(format!("{device_id}/"))
                .execute(&mut *tx)
                .await?;
            } else {
                sqlx::query("DELETE FROM identities WHERE device_id = ? AND module_id = ?")
                    .bind(device_id)
                    .bind(module_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM mqtt_sessions WHERE client_id = ?")
                    .bind(format!("{device_id}/{module_id}"))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn load_session<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT doc FROM mqtt_sessions WHERE client_id = ?")
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn save_session<'a>(&'a self, client_id: &'a str, doc: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO mqtt_sessions (client_id, doc) VALUES (?, ?)
                 ON CONFLICT (client_id) DO UPDATE SET doc = excluded.doc",
            )
            .bind(client_id)
            .bind(doc)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn remove_session<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM mqtt_sessions WHERE client_id = ?")
                .bind(client_id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn c2d_enqueue<'a>(
        &'a self,
        device_id: &'a str,
        message: &'a [u8],
        expiry_ms: i64,
    ) -> StoreFuture<'a, i64> {
        Box::pin(async move {
            let result =
                sqlx::query("INSERT INTO c2d (device_id, message, expiry_ms) VALUES (?, ?, ?)")
                    .bind(device_id)
                    .bind(message)
                    .bind(expiry_ms)
                    .execute(&self.pool)
                    .await?;
            Ok(result.last_insert_rowid())
        })
    }

    fn c2d_load(&self) -> StoreFuture<'_, Vec<C2dRow>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT seq, device_id, message, expiry_ms, delivery_count FROM c2d ORDER BY seq",
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|r| C2dRow {
                    seq: r.get(0),
                    device_id: r.get(1),
                    message: r.get(2),
                    expiry_ms: r.get(3),
                    delivery_count: r.get(4),
                })
                .collect())
        })
    }

    fn c2d_set_delivery_count(&self, seq: i64, count: i64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query("UPDATE c2d SET delivery_count = ? WHERE seq = ?")
                .bind(count)
                .bind(seq)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn c2d_delete<'a>(&'a self, seqs: &'a [i64]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            for seq in seqs {
                sqlx::query("DELETE FROM c2d WHERE seq = ?")
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn get_setting<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT value FROM settings WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn put_setting<'a>(&'a self, key: &'a str, value: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES (?, ?)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }
}

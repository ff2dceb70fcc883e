//! The contract every `HubStore` backend must meet (STYLE.md §5). Today it runs against the
//! embedded SQLite backend; a PostgreSQL backend runs the same functions.

use spoke_store::sql::{HubStore, IdentityRow, SqliteStore};

async fn sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("hub.db")).await.unwrap();
    (dir, store)
}

fn row(device: &str, module: &str, doc: &str) -> IdentityRow {
    IdentityRow {
        device_id: device.into(),
        module_id: module.into(),
        doc: doc.into(),
    }
}

async fn identities_round_trip(store: &dyn HubStore) {
    store
        .put_identity(&row("d1", "", "{\"v\":1}"))
        .await
        .unwrap();
    store.put_identity(&row("d1", "m1", "{}")).await.unwrap();
    store
        .put_identity(&row("d1", "", "{\"v\":2}"))
        .await
        .unwrap();
    store.put_identity(&row("d2", "", "{}")).await.unwrap();
    let all = store.load_identities().await.unwrap();
    assert_eq!(
        all,
        vec![
            row("d1", "", "{\"v\":2}"),
            row("d1", "m1", "{}"),
            row("d2", "", "{}")
        ]
    );
    store.delete_identity("d1", "m1").await.unwrap();
    assert_eq!(store.load_identities().await.unwrap().len(), 2);
}

async fn deleting_a_device_removes_everything_it_owns(store: &dyn HubStore) {
    store.put_identity(&row("gone", "", "{}")).await.unwrap();
    store.put_identity(&row("gone", "m", "{}")).await.unwrap();
    store.put_identity(&row("gone_x", "", "{}")).await.unwrap();
    store.save_session("gone", "[]").await.unwrap();
    store.save_session("gone/m", "[]").await.unwrap();
    store.save_session("gone_x", "[\"keep\"]").await.unwrap();
    store.c2d_enqueue("gone", b"m", 1).await.unwrap();
    store.delete_identity("gone", "").await.unwrap();
    let ids: Vec<String> = store
        .load_identities()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.device_id)
        .collect();
    assert!(!ids.contains(&"gone".to_owned()));
    assert!(
        ids.contains(&"gone_x".to_owned()),
        "a device whose id shares a prefix stays"
    );
    assert_eq!(store.load_session("gone").await.unwrap(), None);
    assert_eq!(store.load_session("gone/m").await.unwrap(), None);
    assert_eq!(
        store.load_session("gone_x").await.unwrap().as_deref(),
        Some("[\"keep\"]")
    );
    assert!(
        store
            .c2d_load()
            .await
            .unwrap()
            .iter()
            .all(|r| r.device_id != "gone")
    );
}

async fn c2d_queue(store: &dyn HubStore) {
    let a = store.c2d_enqueue("q", b"one", 100).await.unwrap();
    let b = store.c2d_enqueue("q", b"two", 200).await.unwrap();
    assert!(b > a, "sequence numbers grow");
    store.c2d_set_delivery_count(a, 3).await.unwrap();
    let rows: Vec<_> = store
        .c2d_load()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.device_id == "q")
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (
            rows[0].message.as_slice(),
            rows[0].delivery_count,
            rows[0].expiry_ms
        ),
        (&b"one"[..], 3, 100)
    );
    store.c2d_delete(&[a, b]).await.unwrap();
    assert!(
        store
            .c2d_load()
            .await
            .unwrap()
            .iter()
            .all(|r| r.device_id != "q")
    );
}

async fn sessions_and_settings(store: &dyn HubStore) {
    assert_eq!(store.load_session("c").await.unwrap(), None);
    store.save_session("c", "[1]").await.unwrap();
    store.save_session("c", "[2]").await.unwrap();
    assert_eq!(
        store.load_session("c").await.unwrap().as_deref(),
        Some("[2]")
    );
    store.remove_session("c").await.unwrap();
    assert_eq!(store.load_session("c").await.unwrap(), None);
    store.put_setting("k", "v1").await.unwrap();
    store.put_setting("k", "v2").await.unwrap();
    assert_eq!(store.get_setting("k").await.unwrap().as_deref(), Some("v2"));
    assert_eq!(store.get_setting("missing").await.unwrap(), None);
}

#[tokio::test]
async fn sqlite_meets_the_contract() {
    let (_dir, store) = sqlite().await;
    identities_round_trip(&store).await;
    deleting_a_device_removes_everything_it_owns(&store).await;
    c2d_queue(&store).await;
    sessions_and_settings(&store).await;
}

#[tokio::test]
async fn sqlite_keeps_data_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store.put_identity(&row("d", "", "{}")).await.unwrap();
        store.c2d_enqueue("d", b"x", 5).await.unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.load_identities().await.unwrap(),
        vec![row("d", "", "{}")]
    );
    assert_eq!(store.c2d_load().await.unwrap().len(), 1);
}

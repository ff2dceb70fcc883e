//! The daemon's side of the edge hub: starts it, and keeps its routes in step with the
//! `$edgeHub` module twin.
//!
//! The `$edgeHub` twin is read over a connection as `$edgeHub` (as the `$edgeAgent` twin is
//! read as `$edgeAgent`). Each desired version is compiled as a whole (every route must
//! parse); a good one is put in force, saved in `<data_dir>/edgehub-desired.json` (so a
//! restart without network routes as before) and reported with `lastDesiredStatus.code` 200; a
//! bad one is reported with 400 and a description naming the route and the problem, and the
//! routes in force stay. Before any `$edgeHub` desired properties are known, edgeHub's default
//! route is in force: `FROM /* INTO $upstream`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use spoke_core::manifest::{HubDesired, ManifestError, RouteSpec, StoreAndForward};
use spoke_core::route::RouteTable;
use tokio::sync::{mpsc, watch};

use super::upstream::{Upstream, UpstreamEvent};
use crate::agent::reported_patch;
use crate::edgehub::{RouteControl, Routing};

/// edgeHub's default store-and-forward time to live (2 hours).
const DEFAULT_TTL_SECS: i64 = 7200;

/// Compiles `$edgeHub` desired properties into routes; `Ok(None)` when they are empty (no
/// deployment yet: the routes in force stay, and nothing is reported).
pub fn compile(desired: &Value) -> Result<Option<Routing>, String> {
    match HubDesired::from_twin(desired) {
        Ok(hub) => routing(&hub).map(Some),
        Err(ManifestError::Empty { .. }) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn routing(hub: &HubDesired) -> Result<Routing, String> {
    let table = RouteTable::compile(hub).map_err(|e| e.to_string())?;
    Ok(Routing {
        table,
        ttl_secs: hub.store_and_forward.ttl_secs,
        broker: hub.mqtt_broker.clone(),
    })
}

/// The routes to start with: the saved `$edgeHub` desired properties, else the default route.
pub fn initial(saved: &Path) -> Routing {
    let from_disk = std::fs::read(saved).ok().and_then(|bytes| {
        let desired: Value = serde_json::from_slice(&bytes).ok()?;
        compile(&desired)
            .inspect_err(
                |e| tracing::warn!(path = %saved.display(), error = e, "saved routes unusable"),
            )
            .ok()
            .flatten()
    });
    from_disk.unwrap_or_else(|| {
        let default = HubDesired {
            schema_version: "1.1".into(),
            routes: BTreeMap::from([(
                "default".to_owned(),
                RouteSpec {
                    text: "FROM /* INTO $upstream".into(),
                    priority: None,
                    ttl_secs: None,
                },
            )]),
            store_and_forward: StoreAndForward {
                ttl_secs: DEFAULT_TTL_SECS,
                max_size_bytes: None,
            },
            mqtt_broker: None,
        };
        routing(&default).unwrap_or_default()
    })
}

/// Follows the `$edgeHub` twin until `stop` changes, then closes the connection.
pub async fn follow(
    upstream: Upstream,
    mut events: mpsc::Receiver<UpstreamEvent>,
    routes: RouteControl,
    saved: PathBuf,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_reported = Value::Null;
    let mut reported = Value::Null;
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = stop.changed() => None,
        };
        let Some(event) = event else { break };
        match event {
            UpstreamEvent::Connected => last_reported = Value::Null,
            UpstreamEvent::Desired(desired) => {
                let version = desired.get("$version").cloned().unwrap_or(Value::Null);
                let status = match compile(&desired) {
                    Ok(None) => {
                        tracing::debug!("no $edgeHub configuration yet; the routes in force stay");
                        continue;
                    }
                    Ok(Some(routing)) => {
                        routes.set(routing);
                        save(&saved, &desired);
                        json!({"code": 200, "description": ""})
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = e,
                            "$edgeHub desired properties refused; routes unchanged"
                        );
                        json!({"code": 400, "description": e})
                    }
                };
                reported = json!({
                    "schemaVersion": "1.0",
                    "lastDesiredVersion": version,
                    "lastDesiredStatus": status,
                });
            }
            UpstreamEvent::Method { rid, name, .. } => {
                let answer = json!({"message": format!("$edgeHub has no method {name:?}")});
                upstream.respond(&rid, 501, &answer).await;
            }
        }
        if let Some(patch) = reported_patch(&last_reported, &reported)
            && upstream.report(patch).await
        {
            last_reported = reported.clone();
        }
    }
    upstream.close().await;
}

fn save(path: &Path, desired: &Value) {
    if let Err(e) = crate::state_file::write(path, desired.to_string().as_bytes()) {
        tracing::warn!(path = %path.display(), error = %e, "routes not saved");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_bad_and_good_edge_hub_twins() {
        assert!(matches!(compile(&json!({"$version": 1})), Ok(None)));
        let bad = json!({"schemaVersion": "1.1", "routes": {"r1": "FROM /messages/* INTO nowhere"},
                         "storeAndForwardConfiguration": {"timeToLiveSecs": 10}});
        let error = compile(&bad).unwrap_err();
        assert!(error.contains("r1"), "{error}");
        let good = json!({"schemaVersion": "1.1", "routes": {"up": "FROM /messages/* INTO $upstream"},
                          "storeAndForwardConfiguration": {"timeToLiveSecs": 10}});
        let routing = compile(&good).unwrap().unwrap();
        assert_eq!(routing.ttl_secs, 10);
        assert_eq!(routing.table.routes().len(), 1);
        let dir = tempfile::tempdir().unwrap();
        let default = initial(&dir.path().join("absent.json"));
        assert_eq!(default.table.routes()[0].name, "default");
    }
}

//! Twin endpoints: GET, PATCH and PUT on `/twins/{id}` and `/twins/{id}/modules/{mid}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::Value;
use spoke_core::ids::Identity;

use super::body::{if_match, json};
use super::devices::{device_id, module_id};
use super::error::ApiError;
use crate::hub::Hub;
use crate::policies::Right;

async fn get(hub: &Hub, headers: &HeaderMap, identity: Identity) -> Result<Json<Value>, ApiError> {
    hub.authorize(headers, Right::ServiceConnect)
        .or_else(|_| hub.authorize(headers, Right::RegistryRead))?;
    let presence = hub.presence(&identity).await;
    Ok(Json(hub.registry.twin_json(&identity, &presence).await?))
}

async fn update(
    hub: &Hub,
    headers: &HeaderMap,
    identity: Identity,
    body: &Bytes,
    replace: bool,
) -> Result<Json<Value>, ApiError> {
    hub.authorize(headers, Right::ServiceConnect)
        .or_else(|_| hub.authorize(headers, Right::RegistryWrite))?;
    let doc: Value = json(body)?;
    let presence = hub.presence(&identity).await;
    let twin = hub
        .registry
        .update_twin(&identity, &doc, if_match(headers), replace, &presence)
        .await?;
    Ok(Json(twin))
}

pub(super) async fn get_device_twin(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    get(&hub, &headers, Identity::device(device_id(&id)?)).await
}

pub(super) async fn patch_device_twin(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    update(
        &hub,
        &headers,
        Identity::device(device_id(&id)?),
        &body,
        false,
    )
    .await
}

pub(super) async fn put_device_twin(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    update(
        &hub,
        &headers,
        Identity::device(device_id(&id)?),
        &body,
        true,
    )
    .await
}

fn module_identity(id: &str, mid: &str) -> Result<Identity, ApiError> {
    Ok(Identity::module(device_id(id)?, module_id(mid)?))
}

pub(super) async fn get_module_twin(
    State(hub): State<Arc<Hub>>,
    Path((id, mid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    get(&hub, &headers, module_identity(&id, &mid)?).await
}

pub(super) async fn patch_module_twin(
    State(hub): State<Arc<Hub>>,
    Path((id, mid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    update(&hub, &headers, module_identity(&id, &mid)?, &body, false).await
}

pub(super) async fn put_module_twin(
    State(hub): State<Arc<Hub>>,
    Path((id, mid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    update(&hub, &headers, module_identity(&id, &mid)?, &body, true).await
}

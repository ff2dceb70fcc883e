//! Registry endpoints: `/devices/{id}` and `/devices/{id}/modules/{mid}` (spec §5.2), and the
//! statistics endpoints.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use spoke_core::ids::{DeviceId, Identity, ModuleId};

use super::body::{if_match, json};
use super::error::ApiError;
use crate::hub::Hub;
use crate::policies::Right;

type ApiResult = Result<Json<Value>, ApiError>;

pub(super) fn device_id(id: &str) -> Result<DeviceId, ApiError> {
    DeviceId::parse(id).map_err(|e| ApiError::bad_request(format!("invalid device id: {e}")))
}

pub(super) fn module_id(id: &str) -> Result<ModuleId, ApiError> {
    ModuleId::parse(id).map_err(|e| ApiError::bad_request(format!("invalid module id: {e}")))
}

pub(super) async fn put_device(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    hub.authorize(&headers, Right::RegistryWrite)?;
    let id = device_id(&id)?;
    let entry = hub
        .registry
        .put_device(&id, json(&body)?, if_match(&headers))
        .await?;
    let presence = hub.presence(&Identity::device(id)).await;
    Ok(Json(entry.to_json(&presence)))
}

pub(super) async fn get_device(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    hub.authorize(&headers, Right::RegistryRead)?;
    let id = device_id(&id)?;
    let entry = hub.registry.get_device(&id).await?;
    let presence = hub.presence(&Identity::device(id)).await;
    Ok(Json(entry.to_json(&presence)))
}

pub(super) async fn list_devices(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult {
    hub.authorize(&headers, Right::RegistryRead)?;
    let top = match query.get("top") {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("top must be a number, not {t}")))?,
        None => 1000,
    };
    let mut out = Vec::new();
    for entry in hub.registry.list_devices(top).await {
        let presence = hub
            .presence(&Identity::device(entry.device_id.clone()))
            .await;
        out.push(entry.to_json(&presence));
    }
    Ok(Json(Value::Array(out)))
}

pub(super) async fn delete_device(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    hub.authorize(&headers, Right::RegistryWrite)?;
    let id = device_id(&id)?;
    hub.registry.delete_device(&id, if_match(&headers)).await?;
    hub.c2d.forget(&id).await;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn put_module(
    State(hub): State<Arc<Hub>>,
    Path((id, mid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let (id, mid) = (device_id(&id)?, module_id(&mid)?);
    hub.authorize_or_edge_device(&headers, Right::RegistryWrite, &id)
        .await?;
    let entry = hub
        .registry
        .put_module(&id, &mid, json(&body)?, if_match(&headers))
        .await?;
    let presence = hub.presence(&Identity::module(id, mid)).await;
    Ok(Json(entry.to_json(&presence)))
}

pub(super) async fn get_module(
    State(hub): State<Arc<Hub>>,
    Path((id, mid)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    let (id, mid) = (device_id(&id)?, module_id(&mid)?);
    hub.authorize_or_edge_device(&headers, Right::RegistryRead, &id)
        .await?;
    let entry = hub.registry.get_module(&id, &mid).await?;
    let presence = hub.presence(&Identity::module(id, mid)).await;
    Ok(Json(entry.to_json(&presence)))
}

pub(super) async fn list_modules(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let id = device_id(&id)?;
    hub.authorize_or_edge_device(&headers, Right::RegistryRead, &id)
        .await?;
    let mut out = Vec::new();
    for entry in hub.registry.list_modules(&id).await? {
        let identity = Identity::module(id.clone(), entry.module_id.clone());
        out.push(entry.to_json(&hub.presence(&identity).await));
    }
    Ok(Json(Value::Array(out)))
}

pub(super) async fn delete_module(
    State(hub): State<Arc<Hub>>,
    Path((id, mid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (id, mid) = (device_id(&id)?, module_id(&mid)?);
    hub.authorize_or_edge_device(&headers, Right::RegistryWrite, &id)
        .await?;
    hub.registry
        .delete_module(&id, &mid, if_match(&headers))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn device_statistics(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
) -> ApiResult {
    hub.authorize(&headers, Right::RegistryRead)?;
    let (total, enabled, disabled) = hub.registry.statistics().await;
    Ok(Json(json!({
        "totalDeviceCount": total,
        "enabledDeviceCount": enabled,
        "disabledDeviceCount": disabled,
    })))
}

pub(super) async fn service_statistics(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
) -> ApiResult {
    hub.authorize(&headers, Right::ServiceConnect)?;
    Ok(Json(
        json!({"connectedDeviceCount": hub.connected_device_count()}),
    ))
}

pub(super) async fn apply_configuration(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    hub.authorize(&headers, Right::RegistryWrite)?;
    let id = device_id(&id)?;
    let content: Value = json(&body)?;
    hub.registry.apply_configuration(&id, &content).await?;
    Ok(StatusCode::NO_CONTENT)
}

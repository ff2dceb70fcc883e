//! The registry's synchronous core: devices, modules and their twins in memory.
//!
//! Every mutation returns the rows to persist and the effects to carry out (disconnects,
//! desired-property notifications); the actor (`registry::actor`) persists before it replies
//! and then runs the effects. Nothing here does I/O or reads the clock: `now` comes in.
//!
//! Invariants: a module's device exists; `$edgeAgent` and `$edgeHub` exist for every edge device;
//! etags and twin versions only grow.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use spoke_core::ids::{DeviceId, Identity, ModuleId};
use spoke_core::twin::{Twin, TwinChange, TwinHeader, X509Thumbprint};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::content::{DesiredWrite, module_writes, modules_content};
use super::model::{
    AuthType, Authentication, DeviceEntry, ModuleEntry, Presence, Status, connection_state,
    registry_etag,
};
use super::{Effect, Persist, RegistryError};
use crate::policies::generate_key;

/// System modules created for every edge device.
pub const EDGE_SYSTEM_MODULES: [&str; 2] = ["$edgeAgent", "$edgeHub"];

/// A device create/update request body (spec §5.3; unknown keys are ignored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceBody {
    /// Must match the path when present.
    pub device_id: Option<String>,
    /// enabled / disabled.
    pub status: Option<Status>,
    /// Free text.
    pub status_reason: Option<String>,
    /// Credentials; keys are generated when absent or empty.
    pub authentication: Option<Authentication>,
    /// `{"iotEdge": bool}`.
    pub capabilities: Option<Capabilities>,
    /// Scope.
    pub device_scope: Option<String>,
    /// Parent scopes.
    pub parent_scopes: Option<Vec<String>>,
}

/// A module create/update request body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleBody {
    /// Must match the path when present.
    pub module_id: Option<String>,
    /// Must match the path when present.
    pub device_id: Option<String>,
    /// Who manages the module (`IotEdge`).
    pub managed_by: Option<String>,
    /// Credentials; keys are generated when absent or empty.
    pub authentication: Option<Authentication>,
}

/// `capabilities`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Edge device.
    #[serde(default)]
    pub iot_edge: bool,
}

/// What an authenticator needs to know about an identity.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Whether the identity (and, for a module, its device) is enabled.
    pub enabled: bool,
    /// Keys and thumbprints.
    pub authentication: Authentication,
    /// Generation id (stamped on telemetry as `iothub-connection-auth-generation-id`).
    pub generation_id: String,
    /// Whether the identity is an IoT Edge device, whose connection may send telemetry on
    /// behalf of its own modules (the edge hub's upstream link).
    pub iot_edge: bool,
}

/// Result of a mutation: the reply value, plus what to persist and do.
#[derive(Debug)]
pub struct Outcome<T> {
    /// Reply to the caller.
    pub value: T,
    /// Rows to write before replying.
    pub persist: Vec<Persist>,
    /// Effects to run after persisting.
    pub effects: Vec<Effect>,
}

impl<T> Outcome<T> {
    fn new(value: T) -> Self {
        Self {
            value,
            persist: Vec::new(),
            effects: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct DeviceState {
    entry: DeviceEntry,
    modules: BTreeMap<ModuleId, ModuleEntry>,
}

/// All identities and twins.
#[derive(Debug, Default)]
pub struct RegistryCore {
    devices: BTreeMap<DeviceId, DeviceState>,
    generation: u64,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "0001-01-01T00:00:00Z".into())
}

fn if_match_ok(if_match: Option<&str>, etag: &str) -> bool {
    match if_match.map(|s| s.trim().trim_matches('"')) {
        None | Some("*") => true,
        Some(tag) => tag == etag,
    }
}

/// Fills missing symmetric keys with fresh ones and validates given ones.
fn complete_auth(mut auth: Authentication) -> Result<Authentication, RegistryError> {
    if auth.kind == AuthType::Sas {
        for key in [
            &mut auth.symmetric_key.primary_key,
            &mut auth.symmetric_key.secondary_key,
        ] {
            match key.as_deref() {
                None | Some("") => *key = Some(generate_key()),
                Some(k) => {
                    let len = base64::engine::general_purpose::STANDARD
                        .decode(k)
                        .map_err(|_| RegistryError::invalid("symmetric key is not valid base64"))?
                        .len();
                    if !(16..=64).contains(&len) {
                        return Err(RegistryError::invalid(
                            "symmetric key must be between 16 and 64 bytes",
                        ));
                    }
                }
            }
        }
    }
    Ok(auth)
}

impl DeviceState {
    /// The device's identity and all its modules' identities.
    fn identities(&self) -> Vec<Identity> {
        let device = self.entry.device_id.clone();
        std::iter::once(Identity::device(device.clone()))
            .chain(
                self.modules
                    .keys()
                    .map(|m| Identity::module(device.clone(), m.clone())),
            )
            .collect()
    }
}

impl RegistryCore {
    /// Rebuilds the registry from stored rows (devices before modules).
    pub fn load(
        devices: impl IntoIterator<Item = DeviceEntry>,
        modules: impl IntoIterator<Item = ModuleEntry>,
    ) -> Self {
        let mut core = Self::default();
        for entry in devices {
            core.devices.insert(
                entry.device_id.clone(),
                DeviceState {
                    entry,
                    modules: BTreeMap::new(),
                },
            );
        }
        for module in modules {
            if let Some(d) = core.devices.get_mut(&module.device_id) {
                d.modules.insert(module.module_id.clone(), module);
            }
        }
        core
    }

    fn next_generation(&mut self, now: OffsetDateTime) -> String {
        self.generation += 1;
        format!(
            "{}{:04}",
            now.unix_timestamp_nanos() / 1_000_000,
            self.generation % 10_000
        )
    }

    fn device(&self, id: &DeviceId) -> Result<&DeviceState, RegistryError> {
        self.devices
            .get(id)
            .ok_or_else(|| RegistryError::DeviceNotFound(id.to_string()))
    }

    fn device_mut(&mut self, id: &DeviceId) -> Result<&mut DeviceState, RegistryError> {
        self.devices
            .get_mut(id)
            .ok_or_else(|| RegistryError::DeviceNotFound(id.to_string()))
    }

    fn module(&self, id: &DeviceId, module: &ModuleId) -> Result<&ModuleEntry, RegistryError> {
        self.device(id)?
            .modules
            .get(module)
            .ok_or_else(|| RegistryError::ModuleNotFound(format!("{id}/{module}")))
    }

    /// Creates (no `If-Match`) or updates (`If-Match` given) a device.
    pub fn put_device(
        &mut self,
        id: &DeviceId,
        body: DeviceBody,
        if_match: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Outcome<DeviceEntry>, RegistryError> {
        if body.device_id.as_deref().is_some_and(|b| b != id.as_str()) {
            return Err(RegistryError::invalid(
                "deviceId in the body does not match the path",
            ));
        }
        let auth = complete_auth(body.authentication.clone().unwrap_or_default())?;
        let mut out = if self.devices.contains_key(id) {
            self.update_device(id, body, auth, if_match, now)?
        } else {
            self.create_device(id, body, auth, if_match, now)?
        };
        self.ensure_edge_modules(id, now, &mut out.persist);
        Ok(out)
    }

    fn update_device(
        &mut self,
        id: &DeviceId,
        body: DeviceBody,
        auth: Authentication,
        if_match: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Outcome<DeviceEntry>, RegistryError> {
        let state = self.device_mut(id)?;
        if if_match.is_none() {
            return Err(RegistryError::DeviceAlreadyExists(id.to_string()));
        }
        if !if_match_ok(if_match, &registry_etag(state.entry.etag)) {
            return Err(RegistryError::PreconditionFailed);
        }
        let status = body.status.unwrap_or(state.entry.status);
        let disabled = status == Status::Disabled && state.entry.status != Status::Disabled;
        let effects = if disabled || auth != state.entry.authentication {
            state
                .identities()
                .into_iter()
                .map(Effect::Disconnect)
                .collect()
        } else {
            Vec::new()
        };
        let entry = &mut state.entry;
        if status != entry.status {
            entry.status_updated_time = rfc3339(now);
        }
        entry.status = status;
        entry.status_reason = body.status_reason;
        entry.authentication = auth;
        if let Some(caps) = body.capabilities {
            entry.iot_edge = caps.iot_edge;
        }
        if let Some(parents) = body.parent_scopes {
            entry.parent_scopes = parents;
        }
        entry.etag += 1;
        Ok(Outcome {
            value: entry.clone(),
            persist: vec![Persist::Device(entry.clone())],
            effects,
        })
    }

    fn create_device(
        &mut self,
        id: &DeviceId,
        body: DeviceBody,
        auth: Authentication,
        if_match: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Outcome<DeviceEntry>, RegistryError> {
        if if_match.is_some_and(|t| t.trim().trim_matches('"') != "*") {
            return Err(RegistryError::DeviceNotFound(id.to_string()));
        }
        let generation_id = self.next_generation(now);
        let iot_edge = body.capabilities.is_some_and(|c| c.iot_edge);
        let entry = DeviceEntry {
            device_id: id.clone(),
            device_scope: if iot_edge {
                Some(format!("ms-azure-iot-edge://{id}-{generation_id}"))
            } else {
                body.device_scope
            },
            generation_id,
            etag: 1,
            status: body.status.unwrap_or_default(),
            status_reason: body.status_reason,
            status_updated_time: rfc3339(now),
            authentication: auth,
            iot_edge,
            parent_scopes: body.parent_scopes.unwrap_or_default(),
            applied_content: None,
            twin: Twin::new(now),
        };
        self.devices.insert(
            id.clone(),
            DeviceState {
                entry: entry.clone(),
                modules: BTreeMap::new(),
            },
        );
        Ok(Outcome {
            value: entry.clone(),
            persist: vec![Persist::Device(entry)],
            effects: Vec::new(),
        })
    }

    /// Creates `$edgeAgent` and `$edgeHub` for an edge device that lacks them.
    fn ensure_edge_modules(
        &mut self,
        id: &DeviceId,
        now: OffsetDateTime,
        persist: &mut Vec<Persist>,
    ) {
        let is_edge = self.devices.get(id).is_some_and(|d| d.entry.iot_edge);
        if !is_edge {
            return;
        }
        for name in EDGE_SYSTEM_MODULES {
            let Ok(module_id) = ModuleId::parse(name) else {
                continue;
            };
            let exists = self
                .devices
                .get(id)
                .is_some_and(|d| d.modules.contains_key(&module_id));
            if !exists {
                let body = ModuleBody::default();
                if let Ok(out) = self.put_module(id, &module_id, body, None, now) {
                    persist.extend(out.persist);
                }
            }
        }
    }

    /// Deletes a device and its modules.
    pub fn delete_device(
        &mut self,
        id: &DeviceId,
        if_match: Option<&str>,
    ) -> Result<Outcome<()>, RegistryError> {
        let state = self.device(id)?;
        if !if_match_ok(if_match, &registry_etag(state.entry.etag)) {
            return Err(RegistryError::PreconditionFailed);
        }
        let identities = state.identities();
        self.devices.remove(id);
        let mut out = Outcome::new(());
        out.persist
            .push(Persist::Delete(Identity::device(id.clone())));
        out.effects
            .extend(identities.into_iter().map(Effect::Forget));
        Ok(out)
    }

    /// Creates or updates a module (`If-Match` required to update).
    pub fn put_module(
        &mut self,
        id: &DeviceId,
        module_id: &ModuleId,
        body: ModuleBody,
        if_match: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Outcome<ModuleEntry>, RegistryError> {
        if body
            .module_id
            .as_deref()
            .is_some_and(|b| b != module_id.as_str())
            || body.device_id.as_deref().is_some_and(|b| b != id.as_str())
        {
            return Err(RegistryError::invalid(
                "deviceId or moduleId in the body does not match the path",
            ));
        }
        let auth = complete_auth(body.authentication.unwrap_or_default())?;
        let generation_id = self.next_generation(now);
        let state = self.device_mut(id)?;
        let identity = Identity::module(id.clone(), module_id.clone());
        let mut effects = Vec::new();
        let entry = if let Some(existing) = state.modules.get_mut(module_id) {
            if if_match.is_none() {
                return Err(RegistryError::ModuleAlreadyExists(identity.to_string()));
            }
            if !if_match_ok(if_match, &registry_etag(existing.etag)) {
                return Err(RegistryError::PreconditionFailed);
            }
            if existing.authentication != auth {
                effects.push(Effect::Disconnect(identity.clone()));
            }
            existing.authentication = auth;
            if body.managed_by.is_some() {
                existing.managed_by = body.managed_by;
            }
            existing.etag += 1;
            existing.clone()
        } else {
            let mut twin = Twin::new(now);
            if let Some(content) = state
                .entry
                .applied_content
                .as_ref()
                .and_then(|c| c.get(module_id.as_str()))
            {
                apply_writes(&mut twin, &module_writes(module_id.as_str(), content)?, now)?;
            }
            let entry = ModuleEntry {
                device_id: id.clone(),
                module_id: module_id.clone(),
                generation_id,
                etag: 1,
                managed_by: body.managed_by,
                authentication: auth,
                twin,
            };
            state.modules.insert(module_id.clone(), entry.clone());
            entry
        };
        Ok(Outcome {
            value: entry.clone(),
            persist: vec![Persist::Module(entry)],
            effects,
        })
    }

    /// `applyConfigurationContent` (spec §5.6): writes each module's desired properties on
    /// this edge device, at once; modules that do not exist yet get them when created. All or
    /// nothing: any invalid entry leaves every twin as it was.
    pub fn apply_configuration(
        &mut self,
        id: &DeviceId,
        body: &Value,
        now: OffsetDateTime,
    ) -> Result<Outcome<()>, RegistryError> {
        let content = modules_content(body)?;
        let mut state = self.device(id)?.clone();
        if !state.entry.iot_edge {
            return Err(RegistryError::Invalid(format!(
                "{id} is not an IoT Edge device"
            )));
        }
        let mut out = Outcome::new(());
        for (module, entry) in content {
            let writes = module_writes(module, entry)?;
            let module_id = ModuleId::parse(module).map_err(|e| {
                RegistryError::Invalid(format!("modulesContent: module {module}: {e}"))
            })?;
            let Some(target) = state.modules.get_mut(&module_id) else {
                continue;
            };
            if let Some((version, body)) = apply_writes(&mut target.twin, &writes, now)? {
                out.persist.push(Persist::Module(target.clone()));
                out.effects.push(Effect::DesiredPatch {
                    identity: Identity::module(id.clone(), module_id),
                    version,
                    body,
                });
            }
        }
        state.entry.applied_content = Some(Value::Object(content.clone()));
        out.persist.push(Persist::Device(state.entry.clone()));
        self.devices.insert(id.clone(), state);
        Ok(out)
    }

    /// Deletes a module.
    pub fn delete_module(
        &mut self,
        id: &DeviceId,
        module_id: &ModuleId,
        if_match: Option<&str>,
    ) -> Result<Outcome<()>, RegistryError> {
        let etag = registry_etag(self.module(id, module_id)?.etag);
        if !if_match_ok(if_match, &etag) {
            return Err(RegistryError::PreconditionFailed);
        }
        self.device_mut(id)?.modules.remove(module_id);
        let identity = Identity::module(id.clone(), module_id.clone());
        let mut out = Outcome::new(());
        out.persist.push(Persist::Delete(identity.clone()));
        out.effects.push(Effect::Forget(identity));
        Ok(out)
    }

    /// One device.
    pub fn get_device(&self, id: &DeviceId) -> Result<DeviceEntry, RegistryError> {
        Ok(self.device(id)?.entry.clone())
    }

    /// Up to `top` devices in id order.
    pub fn list_devices(&self, top: usize) -> Vec<DeviceEntry> {
        self.devices
            .values()
            .take(top)
            .map(|d| d.entry.clone())
            .collect()
    }

    /// One module.
    pub fn get_module(
        &self,
        id: &DeviceId,
        module: &ModuleId,
    ) -> Result<ModuleEntry, RegistryError> {
        self.module(id, module).cloned()
    }

    /// All modules of a device.
    pub fn list_modules(&self, id: &DeviceId) -> Result<Vec<ModuleEntry>, RegistryError> {
        Ok(self.device(id)?.modules.values().cloned().collect())
    }

    /// Credentials of an identity, for authentication.
    pub fn credentials(&self, identity: &Identity) -> Option<Credentials> {
        let device = self.devices.get(&identity.device)?;
        let device_enabled = device.entry.status == Status::Enabled;
        match &identity.module {
            None => Some(Credentials {
                enabled: device_enabled,
                authentication: device.entry.authentication.clone(),
                generation_id: device.entry.generation_id.clone(),
                iot_edge: device.entry.iot_edge,
            }),
            Some(m) => device.modules.get(m).map(|module| Credentials {
                enabled: device_enabled,
                authentication: module.authentication.clone(),
                generation_id: module.generation_id.clone(),
                iot_edge: false,
            }),
        }
    }

    /// Counts for `/statistics/devices`: total, enabled, disabled.
    pub fn statistics(&self) -> (usize, usize, usize) {
        let total = self.devices.len();
        let enabled = self
            .devices
            .values()
            .filter(|d| d.entry.status == Status::Enabled)
            .count();
        (total, enabled, total - enabled)
    }

    fn twin_ref(&self, identity: &Identity) -> Result<(&Twin, TwinHeader), RegistryError> {
        let device = self.device(&identity.device)?;
        let entry = &device.entry;
        match &identity.module {
            None => Ok((&entry.twin, header_for_device(entry))),
            Some(m) => {
                let module = self.module(&identity.device, m)?;
                Ok((&module.twin, header_for_module(entry, module)))
            }
        }
    }

    fn twin_mut(&mut self, identity: &Identity) -> Result<&mut Twin, RegistryError> {
        let device = self.device_mut(&identity.device)?;
        match &identity.module {
            None => Ok(&mut device.entry.twin),
            Some(m) => device
                .modules
                .get_mut(m)
                .map(|module| &mut module.twin)
                .ok_or_else(|| RegistryError::ModuleNotFound(identity.to_string())),
        }
    }

    fn row_for(&self, identity: &Identity) -> Result<Persist, RegistryError> {
        let device = self.device(&identity.device)?;
        Ok(match &identity.module {
            None => Persist::Device(device.entry.clone()),
            Some(m) => Persist::Module(self.module(&identity.device, m)?.clone()),
        })
    }

    /// The full twin JSON (service view) with live fields from `presence`.
    pub fn twin_json(
        &self,
        identity: &Identity,
        presence: &Presence,
    ) -> Result<Value, RegistryError> {
        let (twin, mut header) = self.twin_ref(identity)?;
        apply_presence(&mut header, presence);
        Ok(twin.service_json(&header))
    }

    /// The device's own twin view (`$iothub/twin/GET`).
    pub fn device_twin_view(&self, identity: &Identity) -> Result<Value, RegistryError> {
        Ok(self.twin_ref(identity)?.0.device_view())
    }

    /// Service PATCH (`replace = false`) or PUT (`replace = true`) of a twin.
    pub fn update_twin(
        &mut self,
        identity: &Identity,
        doc: &Value,
        if_match: Option<&str>,
        replace: bool,
        now: OffsetDateTime,
    ) -> Result<Outcome<()>, RegistryError> {
        let twin = self.twin_mut(identity)?;
        if !twin.etag_matches(if_match) {
            return Err(RegistryError::PreconditionFailed);
        }
        let change: TwinChange = if replace {
            twin.replace(doc, now)?
        } else {
            twin.patch(doc, now)?
        };
        let mut out = Outcome::new(());
        out.persist.push(self.row_for(identity)?);
        if let (Some(body), Some(version)) =
            (change.desired_notification(), change.desired_version())
        {
            out.effects.push(Effect::DesiredPatch {
                identity: identity.clone(),
                version,
                body,
            });
        }
        Ok(out)
    }

    /// Device PATCH of its reported properties; returns the new reported `$version`.
    pub fn patch_reported(
        &mut self,
        identity: &Identity,
        patch: &Value,
        now: OffsetDateTime,
    ) -> Result<Outcome<u64>, RegistryError> {
        let twin = self.twin_mut(identity)?;
        twin.patch_reported(patch, now)?;
        let mut out = Outcome::new(twin.reported_version());
        out.persist.push(self.row_for(identity)?);
        Ok(out)
    }

    /// Service JSON of every device twin, or of every module twin, for queries.
    pub fn twin_documents(
        &self,
        modules: bool,
        presence: &dyn Fn(&Identity) -> Presence,
    ) -> Vec<Value> {
        let mut docs = Vec::new();
        for device in self.devices.values() {
            if modules {
                for module in device.modules.values() {
                    let identity =
                        Identity::module(device.entry.device_id.clone(), module.module_id.clone());
                    let mut header = header_for_module(&device.entry, module);
                    apply_presence(&mut header, &presence(&identity));
                    docs.push(module.twin.service_json(&header));
                }
            } else {
                let identity = Identity::device(device.entry.device_id.clone());
                let mut header = header_for_device(&device.entry);
                apply_presence(&mut header, &presence(&identity));
                docs.push(device.entry.twin.service_json(&header));
            }
        }
        docs
    }
}

/// Applies desired writes to a twin; returns the notification (new desired `$version` and
/// the patch a connected module should get) when anything changed.
fn apply_writes(
    twin: &mut Twin,
    writes: &[DesiredWrite],
    now: OffsetDateTime,
) -> Result<Option<(u64, Value)>, RegistryError> {
    let mut combined: Option<Value> = None;
    for write in writes {
        let path: Vec<&str> = write.path.iter().map(String::as_str).collect();
        let change = twin.set_desired_path(&path, &write.value, now)?;
        if let Some(patch) = change.desired_notification() {
            match combined.as_mut() {
                Some(acc) => compose_patch(acc, patch),
                None => combined = Some(patch),
            }
        }
    }
    Ok(combined.map(|mut patch| {
        let version = twin.desired_version();
        patch["$version"] = Value::from(version);
        (version, patch)
    }))
}

/// Composes two merge patches: applying the result equals applying `acc` then `next`
/// (objects merge key by key, anything else, `null` included, replaces).
fn compose_patch(acc: &mut Value, next: Value) {
    match (acc, next) {
        (Value::Object(a), Value::Object(n)) => {
            for (k, v) in n {
                match a.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        compose_patch(existing, v);
                    }
                    _ => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (acc, next) => *acc = next,
    }
}

fn parse_time(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or(TwinHeader::UNSET_TIME)
}

fn thumbprint(auth: &Authentication) -> X509Thumbprint {
    X509Thumbprint {
        primary: auth.x509_thumbprint.primary_thumbprint.clone(),
        secondary: auth.x509_thumbprint.secondary_thumbprint.clone(),
    }
}

fn apply_presence(header: &mut TwinHeader, presence: &Presence) {
    connection_state(presence).clone_into(&mut header.connection_state);
    header.cloud_to_device_message_count = presence.c2d_count;
}

fn header_for_device(entry: &DeviceEntry) -> TwinHeader {
    TwinHeader {
        status: entry.status.as_str().into(),
        status_reason: entry.status_reason.clone(),
        status_update_time: parse_time(&entry.status_updated_time),
        authentication_type: entry.authentication.kind.as_str().into(),
        x509_thumbprint: thumbprint(&entry.authentication),
        iot_edge: Some(entry.iot_edge),
        device_scope: entry.device_scope.clone(),
        parent_scopes: Some(entry.parent_scopes.clone()),
        device_etag: registry_etag(entry.etag),
        ..TwinHeader::new(entry.device_id.as_str())
    }
}

fn header_for_module(device: &DeviceEntry, module: &ModuleEntry) -> TwinHeader {
    TwinHeader {
        module_id: Some(module.module_id.to_string()),
        status: device.status.as_str().into(),
        status_update_time: parse_time(&device.status_updated_time),
        authentication_type: module.authentication.kind.as_str().into(),
        x509_thumbprint: thumbprint(&module.authentication),
        iot_edge: None,
        device_etag: registry_etag(module.etag),
        ..TwinHeader::new(device.device_id.as_str())
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;

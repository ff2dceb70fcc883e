//! The identity registry and twins: one owner ([`Registry`]) for all device and module state.
//!
//! [`core::RegistryCore`] is synchronous and unit-tested directly. [`Registry`] serializes access
//! to it through one FIFO async mutex (the registry's mailbox), persists each mutation through
//! the [`HubStore`] before replying (so an acknowledged change survives `kill -9`), and hands the
//! resulting effects (disconnects, desired-property notifications) to an [`EffectSink`] after the
//! lock is released.

mod content;
pub mod core;
pub mod model;

use std::sync::Arc;

use serde_json::Value;
use spoke_core::ids::{DeviceId, Identity, ModuleId};
use spoke_core::twin::TwinError;
use spoke_store::sql::{HubStore, IdentityRow, StoreError};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use self::core::{Credentials, DeviceBody, ModuleBody, Outcome, RegistryCore};
use self::model::{DeviceEntry, ModuleEntry, Presence};

/// A row to write to the store.
#[derive(Debug, Clone)]
pub enum Persist {
    /// Insert or replace a device.
    Device(DeviceEntry),
    /// Insert or replace a module.
    Module(ModuleEntry),
    /// Delete a device (with its modules) or a module.
    Delete(Identity),
}

/// Something to do outside the registry once a change is durable.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Close the connection of one identity.
    Disconnect(Identity),
    /// Close the connection of a deleted identity and forget its MQTT session.
    Forget(Identity),
    /// Tell a connected device or module about a desired-properties change.
    DesiredPatch {
        /// Whose twin changed.
        identity: Identity,
        /// The new desired `$version`.
        version: u64,
        /// The patch as applied, with `$version` in it.
        body: Value,
    },
}

/// Carries out [`Effect`]s (implemented by the MQTT side of the hub).
pub trait EffectSink: Send + Sync + 'static {
    /// Runs the effects; must not block.
    fn apply(&self, effects: Vec<Effect>);
}

/// Registry errors, each with the HTTP status and IoT Hub error code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No such device.
    #[error("device {0} not found")]
    DeviceNotFound(String),
    /// No such module.
    #[error("module {0} not found")]
    ModuleNotFound(String),
    /// Create of an existing device.
    #[error("device {0} already exists")]
    DeviceAlreadyExists(String),
    /// Create of an existing module.
    #[error("module {0} already exists")]
    ModuleAlreadyExists(String),
    /// `If-Match` did not match.
    #[error("the etag in If-Match does not match")]
    PreconditionFailed,
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The twin change is invalid.
    #[error(transparent)]
    Twin(#[from] TwinError),
    /// The store failed.
    #[error("storage failure")]
    Store(#[from] StoreError),
}

impl RegistryError {
    pub(crate) fn invalid(message: &str) -> Self {
        Self::Invalid(message.to_owned())
    }

    /// HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Self::DeviceNotFound(_) | Self::ModuleNotFound(_) => 404,
            Self::DeviceAlreadyExists(_) | Self::ModuleAlreadyExists(_) => 409,
            Self::PreconditionFailed => 412,
            Self::Invalid(_) | Self::Twin(_) => 400,
            Self::Store(_) => 500,
        }
    }

    /// IoT Hub error code name.
    pub fn code(&self) -> &'static str {
        match self {
            Self::DeviceNotFound(_) => "DeviceNotFound",
            Self::ModuleNotFound(_) => "ModuleNotFound",
            Self::DeviceAlreadyExists(_) => "DeviceAlreadyExists",
            Self::ModuleAlreadyExists(_) => "ModuleAlreadyExistsOnDevice",
            Self::PreconditionFailed => "PreconditionFailed",
            Self::Invalid(_) => "ArgumentInvalid",
            Self::Twin(_) => "InvalidProtocolVersion",
            Self::Store(_) => "ServerError",
        }
    }
}

/// Handle to the registry (cheap to clone).
#[derive(Clone)]
pub struct Registry {
    core: Arc<Mutex<RegistryCore>>,
    store: Arc<dyn HubStore>,
    sink: Arc<dyn EffectSink>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

/// Errors loading the registry at start-up.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The store failed.
    #[error("cannot read identities")]
    Store(#[from] StoreError),
    /// A stored document does not parse.
    #[error("stored identity {device}/{module} is corrupt")]
    Corrupt {
        /// Device id.
        device: String,
        /// Module id (empty for a device).
        module: String,
        /// Parser error.
        #[source]
        source: serde_json::Error,
    },
}

impl Registry {
    /// Loads every identity from the store.
    pub async fn load(
        store: Arc<dyn HubStore>,
        sink: Arc<dyn EffectSink>,
    ) -> Result<Self, LoadError> {
        let rows = store.load_identities().await?;
        let mut devices = Vec::new();
        let mut modules = Vec::new();
        for row in rows {
            let corrupt = |source| LoadError::Corrupt {
                device: row.device_id.clone(),
                module: row.module_id.clone(),
                source,
            };
            if row.module_id.is_empty() {
                devices.push(serde_json::from_str::<DeviceEntry>(&row.doc).map_err(corrupt)?);
            } else {
                modules.push(serde_json::from_str::<ModuleEntry>(&row.doc).map_err(corrupt)?);
            }
        }
        Ok(Self {
            core: Arc::new(Mutex::new(RegistryCore::load(devices, modules))),
            store,
            sink,
        })
    }

    /// Runs a mutation: apply, persist, reply, then effects.
    async fn mutate<T>(
        &self,
        f: impl FnOnce(&mut RegistryCore, OffsetDateTime) -> Result<Outcome<T>, RegistryError>,
    ) -> Result<T, RegistryError> {
        let outcome = {
            let mut core = self.core.lock().await;
            let outcome = f(&mut core, OffsetDateTime::now_utc())?;
            for p in &outcome.persist {
                self.persist(p).await?;
            }
            outcome
        };
        if !outcome.effects.is_empty() {
            self.sink.apply(outcome.effects);
        }
        Ok(outcome.value)
    }

    async fn persist(&self, p: &Persist) -> Result<(), RegistryError> {
        match p {
            Persist::Device(d) => {
                let row = IdentityRow {
                    device_id: d.device_id.to_string(),
                    module_id: String::new(),
                    doc: to_doc(d),
                };
                self.store.put_identity(&row).await?;
            }
            Persist::Module(m) => {
                let row = IdentityRow {
                    device_id: m.device_id.to_string(),
                    module_id: m.module_id.to_string(),
                    doc: to_doc(m),
                };
                self.store.put_identity(&row).await?;
            }
            Persist::Delete(identity) => {
                let module = identity.module.as_ref().map_or("", ModuleId::as_str);
                self.store
                    .delete_identity(identity.device.as_str(), module)
                    .await?;
            }
        }
        Ok(())
    }

    /// Creates or updates a device.
    pub async fn put_device(
        &self,
        id: &DeviceId,
        body: DeviceBody,
        if_match: Option<&str>,
    ) -> Result<DeviceEntry, RegistryError> {
        self.mutate(|c, now| c.put_device(id, body, if_match, now))
            .await
    }

    /// Deletes a device and its modules.
    pub async fn delete_device(
        &self,
        id: &DeviceId,
        if_match: Option<&str>,
    ) -> Result<(), RegistryError> {
        self.mutate(|c, _| c.delete_device(id, if_match)).await
    }

    /// Creates or updates a module.
    pub async fn put_module(
        &self,
        id: &DeviceId,
        module: &ModuleId,
        body: ModuleBody,
        if_match: Option<&str>,
    ) -> Result<ModuleEntry, RegistryError> {
        self.mutate(|c, now| c.put_module(id, module, body, if_match, now))
            .await
    }

    /// `applyConfigurationContent` on an edge device.
    pub async fn apply_configuration(
        &self,
        id: &DeviceId,
        body: &Value,
    ) -> Result<(), RegistryError> {
        self.mutate(|c, now| c.apply_configuration(id, body, now))
            .await
    }

    /// Deletes a module.
    pub async fn delete_module(
        &self,
        id: &DeviceId,
        module: &ModuleId,
        if_match: Option<&str>,
    ) -> Result<(), RegistryError> {
        self.mutate(|c, _| c.delete_module(id, module, if_match))
            .await
    }

    /// One device.
    pub async fn get_device(&self, id: &DeviceId) -> Result<DeviceEntry, RegistryError> {
        self.core.lock().await.get_device(id)
    }

    /// Up to `top` devices.
    pub async fn list_devices(&self, top: usize) -> Vec<DeviceEntry> {
        self.core.lock().await.list_devices(top)
    }

    /// One module.
    pub async fn get_module(
        &self,
        id: &DeviceId,
        module: &ModuleId,
    ) -> Result<ModuleEntry, RegistryError> {
        self.core.lock().await.get_module(id, module)
    }

    /// All modules of a device.
    pub async fn list_modules(&self, id: &DeviceId) -> Result<Vec<ModuleEntry>, RegistryError> {
        self.core.lock().await.list_modules(id)
    }

    /// Credentials for authentication, if the identity exists.
    pub async fn credentials(&self, identity: &Identity) -> Option<Credentials> {
        self.core.lock().await.credentials(identity)
    }

    /// Total, enabled and disabled device counts.
    pub async fn statistics(&self) -> (usize, usize, usize) {
        self.core.lock().await.statistics()
    }

    /// The service view of a twin.
    pub async fn twin_json(
        &self,
        identity: &Identity,
        presence: &Presence,
    ) -> Result<Value, RegistryError> {
        self.core.lock().await.twin_json(identity, presence)
    }

    /// The device's own view of its twin.
    pub async fn device_twin_view(&self, identity: &Identity) -> Result<Value, RegistryError> {
        self.core.lock().await.device_twin_view(identity)
    }

    /// Service PATCH or PUT of a twin; returns the updated service view.
    pub async fn update_twin(
        &self,
        identity: &Identity,
        doc: &Value,
        if_match: Option<&str>,
        replace: bool,
        presence: &Presence,
    ) -> Result<Value, RegistryError> {
        self.mutate(|c, now| {
            let out = c.update_twin(identity, doc, if_match, replace, now)?;
            let json = c.twin_json(identity, presence)?;
            Ok(Outcome {
                value: json,
                persist: out.persist,
                effects: out.effects,
            })
        })
        .await
    }

    /// Device PATCH of reported properties; returns the new reported `$version`.
    pub async fn patch_reported(
        &self,
        identity: &Identity,
        patch: &Value,
    ) -> Result<u64, RegistryError> {
        self.mutate(|c, now| c.patch_reported(identity, patch, now))
            .await
    }

    /// Service JSON of all device twins (or module twins), for queries.
    pub async fn twin_documents(
        &self,
        modules: bool,
        presence: &(dyn Fn(&Identity) -> Presence + Sync),
    ) -> Vec<Value> {
        self.core.lock().await.twin_documents(modules, presence)
    }
}

/// Serializes a registry entry for the store (plain structs of strings, numbers and JSON
/// values: serialization cannot fail).
fn to_doc<T: serde::Serialize>(entry: &T) -> String {
    serde_json::to_string(entry).unwrap_or_default()
}

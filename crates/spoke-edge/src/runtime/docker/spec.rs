//! Building the Docker `ContainerCreate` request of a module: the manifest's `createOptions`
//! passed through, plus what the runtime adds (spec §1.3, §2.2 "Container plumbing").
//!
//! Additions, each overriding what `createOptions` says for the same key:
//! - `Image` = `settings.image`;
//! - `Env`: `createOptions.Env`, then the module's env (same key: the module's value wins, as
//!   aziot-edged merges), then `IOTEDGE_WORKLOADURI=unix:///var/run/iotedge/workload.sock`;
//! - `Labels`: `createOptions.Labels`, the module's labels, then the runtime's own labels
//!   (owner, original image, instance, module name);
//! - `HostConfig.Mounts`: a bind of the module's workload socket at
//!   `/var/run/iotedge/workload.sock` (a `Mounts` entry rather than `Binds`, so a missing host
//!   socket is an error instead of a directory Docker creates in its place); any other
//!   mount or bind at that target is dropped;
//! - `HostConfig.ExtraHosts`: the runtime's host aliases (the edge hub's hostname), resolving
//!   to the host's address on the Spoke network;
//! - the network: unless `createOptions` sets `NetworkingConfig` or `HostConfig.NetworkMode`,
//!   `NetworkMode` = the network and an endpoint with the module's aliases.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, EndpointSettings, Mount, MountType, NetworkingConfig};
use spoke_core::ids::ModuleId;

use crate::runtime::error::RuntimeError;
use crate::runtime::types::{
    CONTAINER_WORKLOAD_SOCKET, ModuleConfig, ModuleSettings, WORKLOAD_URI_ENV,
};

/// Label naming who manages the container (Azure's key; Spoke's value).
pub const OWNER_LABEL: &str = "net.azure-devices.edge.owner";
/// The owner label's value on Spoke's containers.
pub const OWNER: &str = "Spoke.Edge";
/// Label holding the image as written in the manifest (Azure's key).
pub const ORIGINAL_IMAGE_LABEL: &str = "net.azure-devices.edge.original-image";
/// Label naming the spoke-edge instance that owns the container.
pub const INSTANCE_LABEL: &str = "dev.spoke.edge.instance";
/// Label holding the module name (container names cannot hold every module name).
pub const MODULE_LABEL: &str = "dev.spoke.edge.module";

/// What the runtime contributes to every container.
pub(super) struct Context<'a> {
    /// Value of [`INSTANCE_LABEL`].
    pub instance: &'a str,
    /// The network to join when `createOptions` does not choose one.
    pub network: &'a str,
    /// `host:address` entries for `ExtraHosts`.
    pub extra_hosts: &'a [String],
}

/// The container name of a module: `prefix` + the module name without a leading `$` (as
/// aziot-edged strips it). Docker allows `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub(super) fn container_name(prefix: &str, name: &ModuleId) -> Result<String, RuntimeError> {
    let full = format!("{prefix}{}", name.as_str().trim_start_matches('$'));
    let valid = full
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && full
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(full)
    } else {
        Err(RuntimeError::InvalidConfig {
            name: name.clone(),
            runtime: "docker",
            reason: format!("{full:?} is not a valid container name"),
        })
    }
}

/// Builds the create request of `config`, which must be a Docker module, and names the network
/// the runtime chose for it (`None` when `createOptions` chose).
pub(super) fn container_body(
    config: &ModuleConfig,
    ctx: &Context<'_>,
) -> Result<(ContainerCreateBody, Option<String>), RuntimeError> {
    let invalid = |reason: String| RuntimeError::InvalidConfig {
        name: config.name.clone(),
        runtime: "docker",
        reason,
    };
    let ModuleSettings::Docker(settings) = &config.settings else {
        return Err(invalid(format!(
            "module type is {}, not docker",
            config.settings.kind()
        )));
    };
    if !config.workload_socket.is_absolute() {
        return Err(invalid(
            "the workload socket path is not absolute".to_owned(),
        ));
    }
    let options = match &settings.create_options {
        serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
        value @ serde_json::Value::Object(_) => value.clone(),
        _ => return Err(invalid("createOptions is not a JSON object".to_owned())),
    };
    let mut body: ContainerCreateBody =
        serde_json::from_value(options.clone()).map_err(|source| {
            RuntimeError::InvalidCreateOptions {
                name: config.name.clone(),
                source,
            }
        })?;
    warn_ignored_keys(&options, &body);

    body.image = Some(settings.image.clone());
    body.env = Some(merge_env(body.env.take().unwrap_or_default(), &config.env));

    let labels = body.labels.get_or_insert_with(HashMap::new);
    labels.extend(config.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    for (key, value) in [
        (OWNER_LABEL, OWNER),
        (ORIGINAL_IMAGE_LABEL, settings.image.as_str()),
        (INSTANCE_LABEL, ctx.instance),
        (MODULE_LABEL, config.name.as_str()),
    ] {
        labels.insert(key.to_owned(), value.to_owned());
    }

    let choose_network = body.networking_config.is_none()
        && body
            .host_config
            .as_ref()
            .is_none_or(|h| h.network_mode.is_none());
    let host = body.host_config.get_or_insert_with(Default::default);
    if let Some(binds) = &mut host.binds {
        binds.retain(|bind| bind.split(':').nth(1) != Some(CONTAINER_WORKLOAD_SOCKET));
    }
    let mounts = host.mounts.get_or_insert_with(Vec::new);
    mounts.retain(|m| m.target.as_deref() != Some(CONTAINER_WORKLOAD_SOCKET));
    mounts.push(Mount {
        target: Some(CONTAINER_WORKLOAD_SOCKET.to_owned()),
        source: Some(config.workload_socket.display().to_string()),
        typ: Some(MountType::BIND),
        ..Mount::default()
    });
    if !ctx.extra_hosts.is_empty() {
        host.extra_hosts
            .get_or_insert_with(Vec::new)
            .extend(ctx.extra_hosts.iter().cloned());
    }
    let mut chosen = None;
    if choose_network {
        let network = config.network.as_deref().unwrap_or(ctx.network);
        chosen = Some(network.to_owned());
        host.network_mode = Some(network.to_owned());
        let endpoint = EndpointSettings {
            aliases: (!config.network_aliases.is_empty()).then(|| config.network_aliases.clone()),
            ..EndpointSettings::default()
        };
        body.networking_config = Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network.to_owned(), endpoint)])),
        });
    }
    Ok((body, chosen))
}

/// `KEY=VALUE` list from `createOptions.Env` with `module_env` applied on top, then the
/// workload URI. Entries keep their first position; new keys are appended in order.
pub(super) fn merge_env(base: Vec<String>, module_env: &[(String, String)]) -> Vec<String> {
    let workload = (
        WORKLOAD_URI_ENV.to_owned(),
        format!("unix://{CONTAINER_WORKLOAD_SOCKET}"),
    );
    let mut merged = base;
    for (key, value) in module_env.iter().chain(std::iter::once(&workload)) {
        let entry = format!("{key}={value}");
        let same_key = |e: &String| e.split('=').next() == Some(key.as_str());
        match merged.iter_mut().find(|e| same_key(e)) {
            Some(existing) => *existing = entry,
            None => merged.push(entry),
        }
    }
    merged
}

/// Logs the top-level `createOptions` keys Docker would use but this client does not know
/// (Docker matches keys case-insensitively; the typed model does not).
fn warn_ignored_keys(options: &serde_json::Value, body: &ContainerCreateBody) {
    let (Some(given), Ok(serde_json::Value::Object(kept))) =
        (options.as_object(), serde_json::to_value(body))
    else {
        return;
    };
    let ignored: Vec<&str> = given
        .iter()
        .filter(|(key, value)| !value.is_null() && !kept.contains_key(*key))
        .map(|(key, _)| key.as_str())
        .collect();
    if !ignored.is_empty() {
        tracing::warn!(
            ?ignored,
            "createOptions keys not understood; they are ignored"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::runtime::types::DockerSettings;

    fn config(create_options: serde_json::Value) -> ModuleConfig {
        ModuleConfig {
            name: "filter".parse().unwrap(),
            settings: ModuleSettings::Docker(DockerSettings {
                image: "example/filter:1.0".into(),
                create_options,
            }),
            env: vec![("A".into(), "module".into()), ("B".into(), "2".into())],
            workload_socket: "/var/lib/spoke/mnt/filter.sock".into(),
            labels: BTreeMap::from([("team".into(), "x".into())]),
            network: None,
            network_aliases: vec!["filter.local".into()],
        }
    }

    const CTX: Context<'static> = Context {
        instance: "edge-1",
        network: "spoke-edge",
        extra_hosts: &[],
    };

    #[test]
    fn adds_env_labels_mount_network_and_hosts() {
        let extra = ["edge.local:172.18.0.1".to_owned()];
        let ctx = Context {
            extra_hosts: &extra,
            ..CTX
        };
        let options = json!({
            "Env": ["A=create", "C=3"],
            "Labels": {"team": "y", "keep": "1"},
            "Cmd": ["run"],
            "HostConfig": {"Binds": ["/data:/data", "/old.sock:/var/run/iotedge/workload.sock"],
                           "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}},
            "ExposedPorts": {"80/tcp": {}}
        });
        let (body, network) = container_body(&config(options), &ctx).unwrap();
        assert_eq!(network.as_deref(), Some("spoke-edge"));
        assert_eq!(body.image.as_deref(), Some("example/filter:1.0"));
        assert_eq!(body.cmd, Some(vec!["run".to_owned()]));
        assert_eq!(
            body.env.unwrap(),
            [
                "A=module",
                "C=3",
                "B=2",
                "IOTEDGE_WORKLOADURI=unix:///var/run/iotedge/workload.sock"
            ]
        );
        let labels = body.labels.unwrap();
        assert_eq!(labels["team"], "x");
        assert_eq!(labels["keep"], "1");
        assert_eq!(labels[OWNER_LABEL], OWNER);
        assert_eq!(labels[ORIGINAL_IMAGE_LABEL], "example/filter:1.0");
        assert_eq!(labels[INSTANCE_LABEL], "edge-1");
        assert_eq!(labels[MODULE_LABEL], "filter");
        let host = body.host_config.unwrap();
        assert_eq!(host.binds.unwrap(), ["/data:/data"]);
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts.len(), 1);
        assert_eq!(
            mounts[0].source.as_deref(),
            Some("/var/lib/spoke/mnt/filter.sock")
        );
        assert_eq!(mounts[0].target.as_deref(), Some(CONTAINER_WORKLOAD_SOCKET));
        assert!(
            host.port_bindings.is_some(),
            "unknown to us but passed through"
        );
        assert_eq!(host.extra_hosts.unwrap(), extra);
        assert_eq!(host.network_mode.as_deref(), Some("spoke-edge"));
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(
            endpoints["spoke-edge"].aliases.as_deref(),
            Some(&["filter.local".to_owned()][..])
        );
        assert_eq!(body.exposed_ports.unwrap(), ["80/tcp"]);
    }

    #[test]
    fn respects_a_network_chosen_in_create_options() {
        let own = json!({"NetworkingConfig": {"EndpointsConfig": {"mine": {}}}});
        let (body, network) = container_body(&config(own), &CTX).unwrap();
        assert_eq!(network, None);
        assert!(body.host_config.unwrap().network_mode.is_none());

        let host = json!({"HostConfig": {"NetworkMode": "host"}});
        let (body, network) = container_body(&config(host), &CTX).unwrap();
        assert_eq!(network, None);
        assert!(body.networking_config.is_none());
        assert_eq!(
            body.host_config.unwrap().network_mode.as_deref(),
            Some("host")
        );

        let mut other = config(serde_json::Value::Null);
        other.network = Some("other".into());
        let (body, network) = container_body(&other, &CTX).unwrap();
        assert_eq!(network.as_deref(), Some("other"));
        assert!(
            body.networking_config
                .unwrap()
                .endpoints_config
                .unwrap()
                .contains_key("other")
        );
    }

    #[test]
    fn rejects_bad_create_options_and_settings() {
        assert!(matches!(
            container_body(&config(json!("{}")), &CTX),
            Err(RuntimeError::InvalidConfig { .. })
        ));
        assert!(matches!(
            container_body(&config(json!({"Env": "A=1"})), &CTX),
            Err(RuntimeError::InvalidCreateOptions { .. })
        ));
        let mut process = config(json!({}));
        process.settings = ModuleSettings::Process(crate::runtime::types::ProcessSettings {
            command: vec!["x".into()],
            working_dir: None,
        });
        assert!(matches!(
            container_body(&process, &CTX),
            Err(RuntimeError::InvalidConfig { .. })
        ));
    }

    #[test]
    fn container_names_strip_dollar_and_reject_invalid_characters() {
        let name = |s: &str| s.parse::<ModuleId>().unwrap();
        assert_eq!(container_name("", &name("$edgeHub")).unwrap(), "edgeHub");
        assert_eq!(container_name("t1-", &name("filter")).unwrap(), "t1-filter");
        assert!(container_name("", &name("a(b)")).is_err());
        assert!(container_name("", &name("-x")).is_err());
    }
}

//! Who connection number `i` is: client id, user name, password and telemetry topic, built from
//! templates so the same tool drives Spoke Hub (SAS tokens) and a plain broker (no password).
//!
//! Templates expand `{i}` (the connection index), `{id}` (the expanded client id) and `{host}`
//! (the server name). Device keys are derived from a seed ([`device_key`]), so `provision` and
//! the MQTT modes agree on them without sharing state.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use spoke_core::{ids, sas};

/// Identity options of the MQTT modes.
#[derive(Debug, clap::Args)]
pub struct IdentityArgs {
    /// Client id template.
    #[arg(long, default_value = "dev{i}")]
    pub client_id: String,
    /// User name template; empty sends no user name (Spoke Hub:
    /// `{host}/{id}/?api-version=2021-04-12`).
    #[arg(long, default_value = "")]
    pub username: String,
    /// Telemetry topic template.
    #[arg(long, default_value = "devices/{id}/messages/events/")]
    pub topic: String,
    /// Send a device SAS token as password, signed with the key derived from this seed (the
    /// seed given to `provision`). Needs a user name.
    #[arg(long, conflicts_with = "sas_key")]
    pub sas_key_seed: Option<String>,
    /// Send a SAS token as password, signed with this base64 key (a module's key on an edge
    /// hub: client id `{device}/{module}`). Needs a user name.
    #[arg(long)]
    pub sas_key: Option<String>,
    /// Lifetime of the SAS tokens.
    #[arg(long, default_value_t = 3600)]
    pub sas_ttl_secs: u64,
    /// The `{host}` of the templates and SAS resources, when not the server's name: an edge
    /// hub's modules name their IoT hub there, not the gateway they connect to.
    #[arg(long)]
    pub hub_hostname: Option<String>,
}

/// The credentials and topic of one connection.
#[derive(Debug, Clone)]
pub struct Identity {
    /// MQTT client identifier.
    pub client_id: String,
    /// MQTT user name, if any.
    pub username: Option<String>,
    /// MQTT password, if any.
    pub password: Option<Bytes>,
    /// Topic the connection publishes telemetry to.
    pub topic: String,
}

/// Builds [`Identity`]s from [`IdentityArgs`] for one server.
#[derive(Debug)]
pub struct Identities<'a> {
    args: &'a IdentityArgs,
    host: String,
    expiry: u64,
}

impl<'a> Identities<'a> {
    /// Identities for the server named `host`.
    pub fn new(args: &'a IdentityArgs, host: String) -> anyhow::Result<Self> {
        if (args.sas_key_seed.is_some() || args.sas_key.is_some()) && args.username.is_empty() {
            anyhow::bail!("--sas-key-seed needs --username (MQTT sends a password only with one)");
        }
        Ok(Self {
            args,
            host: args.hub_hostname.clone().unwrap_or(host),
            expiry: unix_now() + args.sas_ttl_secs,
        })
    }

    /// The identity of connection `index`.
    pub fn get(&self, index: usize) -> anyhow::Result<Identity> {
        let client_id = expand(&self.args.client_id, index, "", &self.host);
        let username = (!self.args.username.is_empty())
            .then(|| expand(&self.args.username, index, &client_id, &self.host));
        let key = match (&self.args.sas_key_seed, &self.args.sas_key) {
            (Some(seed), _) => Some(device_key(seed, &client_id)),
            (None, key) => key.clone(),
        };
        let password = match key {
            None => None,
            Some(key) => {
                let identity = ids::Identity::from_client_id(&client_id)
                    .with_context(|| format!("client id {client_id} names no identity"))?;
                let uri = sas::resource_uri(&self.host, &identity);
                let token = sas::device_token(&uri, &key, self.expiry)
                    .context("cannot sign a SAS token")?;
                Some(Bytes::from(token))
            }
        };
        Ok(Identity {
            topic: expand(&self.args.topic, index, &client_id, &self.host),
            client_id,
            username,
            password,
        })
    }
}

/// The base64 symmetric key of device `id` derived from `seed` (an HMAC-SHA256 of the id).
pub fn device_key(seed: &str, id: &str) -> String {
    sas::signature(seed.as_bytes(), id)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn expand(template: &str, index: usize, id: &str, host: &str) -> String {
    template
        .replace("{i}", &index.to_string())
        .replace("{id}", id)
        .replace("{host}", host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(username: &str, seed: Option<&str>) -> IdentityArgs {
        IdentityArgs {
            client_id: "dev{i}".into(),
            username: username.into(),
            topic: "devices/{id}/messages/events/".into(),
            sas_key_seed: seed.map(Into::into),
            sas_key: None,
            sas_ttl_secs: 60,
            hub_hostname: None,
        }
    }

    #[test]
    fn plain_broker_identity_has_no_credentials() {
        let args = args("", None);
        let ids = Identities::new(&args, "127.0.0.1".into()).unwrap();
        let id = ids.get(7).unwrap();
        assert_eq!(id.client_id, "dev7");
        assert_eq!(id.topic, "devices/dev7/messages/events/");
        assert!(id.username.is_none() && id.password.is_none());
    }

    #[test]
    fn hub_identity_signs_a_token_that_verifies_with_the_derived_key() {
        let args = args("{host}/{id}/?api-version=2021-04-12", Some("seed"));
        let ids = Identities::new(&args, "hub.local".into()).unwrap();
        let id = ids.get(3).unwrap();
        assert_eq!(
            id.username.as_deref(),
            Some("hub.local/dev3/?api-version=2021-04-12")
        );
        let token = std::str::from_utf8(id.password.as_ref().unwrap()).unwrap();
        let token = sas::SasToken::parse(token).unwrap();
        let key = sas::decode_key(&device_key("seed", "dev3")).unwrap();
        token.verify(&key, unix_now()).unwrap();
        assert!(
            token
                .verify(
                    &sas::decode_key(&device_key("other", "dev3")).unwrap(),
                    unix_now()
                )
                .is_err()
        );
    }

    #[test]
    fn a_module_token_covers_the_module_resource() {
        let mut args = args("{host}/{id}/?api-version=2021-04-12", None);
        args.client_id = "edge1/pub".into();
        let key = device_key("any", "edge1/pub");
        args.sas_key = Some(key.clone());
        args.hub_hostname = Some("edge.local".into());
        let ids = Identities::new(&args, "127.0.0.2".into()).unwrap();
        let id = ids.get(0).unwrap();
        assert_eq!(
            id.username.as_deref(),
            Some("edge.local/edge1/pub/?api-version=2021-04-12")
        );
        let token = std::str::from_utf8(id.password.as_ref().unwrap()).unwrap();
        let token = sas::SasToken::parse(token).unwrap();
        token
            .verify(&sas::decode_key(&key).unwrap(), unix_now())
            .unwrap();
        assert!(
            token
                .string_to_sign()
                .starts_with("edge.local%2Fdevices%2Fedge1%2Fmodules%2Fpub\n")
        );
    }

    #[test]
    fn a_password_needs_a_user_name() {
        let args = args("", Some("seed"));
        assert!(Identities::new(&args, "h".into()).is_err());
    }
}

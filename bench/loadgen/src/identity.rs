//! Who connection number `i` is: client id, user name, password and telemetry topic, built from
//! templates so the same tool drives Spoke Hub (SAS tokens) and a plain broker (no password).
//!
//! Templates expand `{i}` (the connection index), `{id}` (the expanded client id) and `{host}`
//! (the server name). Device keys are derived from a seed ([`device_key`]), so `provision` and
//! the MQTT modes agree on them without sharing state.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use spoke_core::sas;

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
    #[arg(long)]
    pub sas_key_seed: Option<String>,
    /// Lifetime of the SAS tokens.
    #[arg(long, default_value_t = 3600)]
    pub sas_ttl_secs: u64,
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
        if args.sas_key_seed.is_some() && args.username.is_empty() {
            anyhow::bail!("--sas-key-seed needs --username (MQTT sends a password only with one)");
        }
        Ok(Self {
            args,
            host,
            expiry: unix_now() + args.sas_ttl_secs,
        })
    }

    /// The identity of connection `index`.
    pub fn get(&self, index: usize) -> anyhow::Result<Identity> {
        let client_id = expand(&self.args.client_id, index, "", &self.host);
        let username = (!self.args.username.is_empty())
            .then(|| expand(&self.args.username, index, &client_id, &self.host));
        let password = match &self.args.sas_key_seed {
            None => None,
            Some(seed) => {
                let uri = format!("{}/devices/{client_id}", self.host);
                let token = sas::device_token(&uri, &device_key(seed, &client_id), self.expiry)
                    .context("cannot sign a device token")?;
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
            sas_ttl_secs: 60,
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
    fn a_password_needs_a_user_name() {
        let args = args("", Some("seed"));
        assert!(Identities::new(&args, "h".into()).is_err());
    }
}

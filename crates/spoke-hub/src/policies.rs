//! Shared access policies (IoT Hub's `iothubowner`, `service`, `device`, `registryRead`,
//! `registryReadWrite`) and the rights they grant.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// A permission a shared access policy can grant (IoT Hub names them the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Right {
    /// Read the identity registry.
    RegistryRead,
    /// Create, update and delete identities (implies read).
    RegistryWrite,
    /// Service operations: twins, methods, C2D, telemetry endpoint, queries.
    ServiceConnect,
    /// Act as any device.
    DeviceConnect,
}

/// One shared access policy with its two keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Policy name, the token's `skn`.
    pub key_name: String,
    /// Primary key, base64.
    pub primary_key: String,
    /// Secondary key, base64.
    pub secondary_key: String,
    /// What the policy grants.
    pub rights: Vec<Right>,
}

impl Policy {
    /// Whether this policy grants `right` (`RegistryWrite` implies `RegistryRead`).
    pub fn grants(&self, right: Right) -> bool {
        self.rights.contains(&right)
            || (right == Right::RegistryRead && self.rights.contains(&Right::RegistryWrite))
    }
}

/// The default policies of a new hub, with fresh keys.
pub fn defaults() -> Vec<Policy> {
    use Right::{DeviceConnect, RegistryRead, RegistryWrite, ServiceConnect};
    [
        (
            "iothubowner",
            vec![RegistryWrite, ServiceConnect, DeviceConnect],
        ),
        ("service", vec![ServiceConnect]),
        ("device", vec![DeviceConnect]),
        ("registryRead", vec![RegistryRead]),
        ("registryReadWrite", vec![RegistryWrite]),
    ]
    .into_iter()
    .map(|(name, rights)| Policy {
        key_name: name.into(),
        primary_key: generate_key(),
        secondary_key: generate_key(),
        rights,
    })
    .collect()
}

/// A new random symmetric key: 32 random bytes, base64 (44 characters), as IoT Hub generates.
pub fn generate_key() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_grant_as_iot_hub_does() {
        let policies = defaults();
        let get = |n: &str| policies.iter().find(|p| p.key_name == n).unwrap();
        assert!(get("iothubowner").grants(Right::RegistryRead));
        assert!(get("registryReadWrite").grants(Right::RegistryRead));
        assert!(!get("registryRead").grants(Right::RegistryWrite));
        assert!(!get("service").grants(Right::RegistryRead));
        assert!(get("device").grants(Right::DeviceConnect));
        assert_eq!(generate_key().len(), 44);
    }
}

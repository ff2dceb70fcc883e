//! `schemaVersion` checks of the `$edgeAgent` and `$edgeHub` desired properties.
//!
//! Versions parse like .NET's `System.Version`: two to four dot-separated non-negative
//! integers; an absent build or revision component ranks below 0, so `1.1` < `1.1.0` <
//! `1.1.0.0`.
//! - edgeAgent (`EdgeAgentConnection.ValidateSchemaVersion`) accepts major 1 up to `1.1.0`:
//!   `1.0`, `1.1`, `1.0.x`, `1.1.0` (edge contracts spec §3.1).
//! - edgeHub (`EdgeHubConfigParser`) accepts major 1 with minor 0 to 3, whatever follows
//!   (spec §3.2).

use super::error::ManifestError;
use super::json::Obj;

/// A parsed version: major, minor, build, revision; absent components are -1.
type Version = [i64; 4];

/// The newest `$edgeAgent` schema version this model reads.
const AGENT_MAX: Version = [1, 1, 0, -1];

/// The `$edgeHub` schema minor versions this model reads (all of major 1).
const HUB_MINORS: std::ops::RangeInclusive<i64> = 0..=3;

/// Parses a version the way `System.Version.TryParse` does.
fn parse(text: &str) -> Option<Version> {
    let parts: Vec<&str> = text.split('.').collect();
    if !(2..=4).contains(&parts.len()) {
        return None;
    }
    let mut version = [-1; 4];
    for (slot, part) in version.iter_mut().zip(&parts) {
        let digits = part.trim();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = digits.parse::<i32>().ok()?.into();
    }
    Some(version)
}

/// Reads and checks `schemaVersion` of `$edgeAgent` desired properties; returns it as written.
pub(super) fn agent(doc: &Obj<'_>) -> Result<String, ManifestError> {
    let found = doc.req_text("schemaVersion")?;
    match parse(&found) {
        Some(v) if v[0] == 1 && v <= AGENT_MAX => Ok(found),
        _ => Err(ManifestError::SchemaVersion {
            path: doc.path_of("schemaVersion"),
            found,
            supported: "1.0 or 1.1",
        }),
    }
}

/// Reads and checks `schemaVersion` of `$edgeHub` desired properties; returns it as written
/// and its minor version.
pub(super) fn hub(doc: &Obj<'_>) -> Result<(String, i64), ManifestError> {
    let found = doc.req_text("schemaVersion")?;
    match parse(&found) {
        Some(v) if v[0] == 1 && HUB_MINORS.contains(&v[1]) => Ok((found, v[1])),
        _ => Err(ManifestError::SchemaVersion {
            path: doc.path_of("schemaVersion"),
            found,
            supported: "1.0, 1.1, 1.2 or 1.3",
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn agent_version(v: &str) -> Result<String, ManifestError> {
        let doc = json!({ "schemaVersion": v });
        agent(&Obj::new(&doc, "$edgeAgent".into()).unwrap())
    }

    fn hub_version(v: &str) -> Result<(String, i64), ManifestError> {
        let doc = json!({ "schemaVersion": v });
        hub(&Obj::new(&doc, "$edgeHub".into()).unwrap())
    }

    #[test]
    fn parses_like_system_version() {
        assert_eq!(parse("1.0"), Some([1, 0, -1, -1]));
        assert_eq!(parse("1.1.0.0"), Some([1, 1, 0, 0]));
        assert_eq!(parse(" 1 . 1 "), Some([1, 1, -1, -1]));
        for bad in [
            "1",
            "",
            "1.",
            ".1",
            "1.1.1.1.1",
            "a.b",
            "1.-1",
            "1.99999999999",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn agent_accepts_up_to_1_1_0() {
        for ok in ["1.0", "1.1", "1.0.0", "1.0.7", "1.1.0"] {
            assert_eq!(agent_version(ok).unwrap(), ok);
        }
        for bad in ["1.2", "1.1.1", "1.1.0.0", "2.0", "0.9", "1", "one"] {
            assert_eq!(agent_version(bad).unwrap_err().status(), 412, "{bad:?}");
        }
    }

    #[test]
    fn hub_accepts_minor_0_to_3() {
        for (ok, minor) in [("1.0", 0), ("1.1", 1), ("1.2", 2), ("1.3", 3), ("1.1.5", 1)] {
            assert_eq!(hub_version(ok).unwrap(), (ok.to_owned(), minor));
        }
        for bad in ["1.4", "2.0", "1"] {
            assert_eq!(hub_version(bad).unwrap_err().status(), 412, "{bad:?}");
        }
    }

    #[test]
    fn missing_or_numeric_schema_version() {
        let doc = json!({});
        let err = agent(&Obj::new(&doc, "$edgeAgent".into()).unwrap()).unwrap_err();
        assert_eq!(err.status(), 400);
        let doc = json!({"schemaVersion": 1.1});
        assert_eq!(
            agent(&Obj::new(&doc, "$edgeAgent".into()).unwrap()).unwrap(),
            "1.1"
        );
    }
}

//! The process runtime's state on disk, so created modules and their last exit survive a
//! restart of spoke-edge.
//!
//! Layout under the runtime's data directory:
//!
//! ```text
//! modules/<encoded name>/module.json   StoredModule: instance id + ModuleConfig
//! modules/<encoded name>/run.json      RunRecord: the current or last run
//! modules/<encoded name>/logs/         see `logfile`
//! modules/<encoded name>/work/         default working directory
//! ```
//!
//! `<encoded name>` is the module name with every byte other than ASCII letters, digits, `-`
//! and `_` percent-encoded, so names like `..` or `$edgeHub` are safe directory names.
//! Invariants: JSON files are replaced atomically (write a uniquely named temporary file, then
//! rename); a
//! `run.json` without `finished_at` means a run was going when it was written.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::runtime::error::RuntimeError;
use crate::runtime::types::{InstanceId, ModuleConfig};

/// Bytes kept as they are in directory names.
const DIR_NAME_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// What `module.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredModule {
    /// The instance id handed out by `create`.
    pub id: InstanceId,
    /// The configuration given to `create`.
    pub config: ModuleConfig,
}

/// What `run.json` holds: the current or last run of a module.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    /// PID (and process group id) of the main process.
    pub pid: Option<u32>,
    /// Its start time in clock ticks, to tell it from a later process with the same PID.
    pub start_ticks: Option<u64>,
    /// When the run started.
    #[serde(with = "rfc3339_opt")]
    pub started_at: Option<OffsetDateTime>,
    /// When it ended; `None` while running.
    #[serde(with = "rfc3339_opt")]
    pub finished_at: Option<OffsetDateTime>,
    /// Its exit code (128 + signal when killed).
    pub exit_code: Option<i64>,
    /// Why it ended, when the runtime knows more than the code.
    pub description: Option<String>,
}

/// The directory of module `name` under `root`.
pub(crate) fn module_dir(root: &Path, name: &str) -> PathBuf {
    root.join("modules")
        .join(utf8_percent_encode(name, DIR_NAME_SET).to_string())
}

/// Writes `value` as JSON to `path` atomically.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RuntimeError> {
    let data = serde_json::to_vec_pretty(value).map_err(|e| RuntimeError::Io {
        operation: format!("encoding {}", path.display()),
        source: io::Error::other(e),
    })?;
    crate::state_file::write(path, &data).map_err(|e| RuntimeError::io("writing", path, e))
}

/// Reads JSON from `path`; `Ok(None)` when the file does not exist.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(io::Error::other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every module stored under `root`, with its run record and directory. Unreadable entries are
/// logged and skipped, so one corrupt file does not hide the other modules.
pub(crate) fn load_all(
    root: &Path,
) -> Result<Vec<(StoredModule, RunRecord, PathBuf)>, RuntimeError> {
    let modules = root.join("modules");
    let entries = match fs::read_dir(&modules) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RuntimeError::io("listing", &modules, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let dir = entry
            .map_err(|e| RuntimeError::io("listing", &modules, e))?
            .path();
        let loaded = read_json::<StoredModule>(&dir.join("module.json")).and_then(|module| {
            let run = read_json::<RunRecord>(&dir.join("run.json"))?;
            Ok(module.map(|m| (m, run.unwrap_or_default())))
        });
        match loaded {
            Ok(Some((module, run))) if module_dir(root, module.config.name.as_str()) == dir => {
                found.push((module, run, dir));
            }
            Ok(_) => {
                tracing::warn!(dir = %dir.display(), "ignoring a directory that holds no module");
            }
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "ignoring an unreadable module");
            }
        }
    }
    Ok(found)
}

/// Serde for `Option<OffsetDateTime>` as an RFC 3339 string or null.
mod rfc3339_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    // serde's `with` hands over `&Option<T>`.
    #[allow(clippy::ref_option)]
    pub(super) fn serialize<S: Serializer>(
        value: &Option<OffsetDateTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(t) => {
                let text = t.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
                serializer.serialize_some(&text)
            }
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|s| OffsetDateTime::parse(&s, &Rfc3339).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names_are_safe() {
        let root = Path::new("/data");
        assert_eq!(
            module_dir(root, "SimulatedTemperatureSensor"),
            Path::new("/data/modules/SimulatedTemperatureSensor")
        );
        assert_eq!(module_dir(root, ".."), Path::new("/data/modules/%2E%2E"));
        assert_eq!(
            module_dir(root, "$edge-Hub_1"),
            Path::new("/data/modules/%24edge-Hub_1")
        );
    }

    #[test]
    fn run_records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        let run = RunRecord {
            pid: Some(42),
            start_ticks: Some(7),
            started_at: Some(OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()),
            finished_at: None,
            exit_code: Some(3),
            description: Some("x".into()),
        };
        write_json(&path, &run).unwrap();
        assert_eq!(read_json::<RunRecord>(&path).unwrap(), Some(run));
        assert_eq!(
            read_json::<RunRecord>(&dir.path().join("absent")).unwrap(),
            None
        );
    }
}

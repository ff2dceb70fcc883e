//! The daemon's state files (saved deployment, identity cache, sessions, routes, module
//! records, twins): replaced atomically and durably, so that after a crash or power loss a
//! file holds the old content or the new one, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use serde::de::DeserializeOwned;

/// Reads the JSON state file `path`; a missing file is the default, and so is an unreadable
/// one, with an error log naming the file and `what` starting empty means.
pub fn load<T: DeserializeOwned + Default>(path: &Path, what: &str) -> T {
    let parsed = match fs::read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return T::default(),
        Err(e) => Err(e.to_string()),
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| e.to_string()),
    };
    parsed.unwrap_or_else(|error| {
        tracing::error!(path = %path.display(), error, "state file unreadable; starting with {what}");
        T::default()
    })
}

/// Writes `bytes` to `path` (mode 0600 when created): to a temporary file beside it, synced,
/// then renamed over it, and the directory synced.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // A unique temporary name: concurrent writers never share one, the last rename wins.
    let tmp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn replaces_the_content_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write(&path, b"one").unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn load_falls_back_to_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load::<Vec<u32>>(&path, "nothing"), Vec::<u32>::new());
        fs::write(&path, b"{not json").unwrap();
        assert_eq!(load::<Vec<u32>>(&path, "nothing"), Vec::<u32>::new());
        write(&path, b"[1,2]").unwrap();
        assert_eq!(load::<Vec<u32>>(&path, "nothing"), vec![1, 2]);
    }

    #[test]
    fn a_failed_write_names_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent").join("state.json");
        assert_eq!(
            write(&missing, b"x").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}

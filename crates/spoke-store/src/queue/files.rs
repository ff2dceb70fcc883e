//! The queue's own files (everything but the logs): paths, the store lock, endpoint
//! directories and cursor files. Blocking calls; the async callers run them on tokio's
//! blocking pool through [`blocking`].

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::codec::{self, CursorState};
use super::{PRIORITIES, QueueError};

/// Prefix of an endpoint directory being deleted.
const REMOVING: &str = ".removing-";

/// Runs blocking file work off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, QueueError> + Send + 'static,
) -> Result<T, QueueError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| QueueError::Closed)?
}

/// The log directory of priority `priority` of the endpoint in `dir`.
pub(crate) fn lane_dir(dir: &Path, priority: usize) -> PathBuf {
    dir.join(format!("p{priority}"))
}

fn cursor_path(dir: &Path, priority: usize) -> PathBuf {
    dir.join(format!("p{priority}.cursor"))
}

/// Creates the store directory, takes its lock, finishes interrupted removals and returns
/// the lock and the endpoint names found (with their directories).
pub(crate) fn prepare_store(dir: &Path) -> Result<(File, Vec<(String, PathBuf)>), QueueError> {
    fs::create_dir_all(dir).map_err(|e| QueueError::io(dir, e))?;
    let path = dir.join(".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| QueueError::io(&path, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(QueueError::Locked { path: dir.into() }),
        Err(TryLockError::Error(e)) => return Err(QueueError::io(&path, e)),
    }
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| QueueError::io(dir, e))? {
        let entry = entry.map_err(|e| QueueError::io(dir, e))?;
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if file_name.starts_with(REMOVING) {
            fs::remove_dir_all(&path).map_err(|e| QueueError::io(&path, e))?;
        } else if let Some(name) = codec::decode_name(&file_name) {
            found.push((name, path));
        } else {
            tracing::warn!(path = %path.display(), "ignoring a directory that is not an endpoint queue");
        }
    }
    found.sort();
    Ok((lock, found))
}

/// Creates a directory (fine if it exists) and syncs its parent so the entry is durable.
pub(crate) fn create_dir(path: &Path) -> Result<(), QueueError> {
    match fs::create_dir(path) {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(QueueError::io(path, e)),
    }
}

/// Deletes an endpoint directory: renamed aside first (durably), so an interrupted deletion
/// is finished on the next open instead of leaving a half-deleted queue.
pub(crate) fn remove_endpoint_dir(path: &Path) -> Result<(), QueueError> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let aside = parent.join(format!("{REMOVING}{}", name.to_string_lossy()));
    match fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(QueueError::io(path, e)),
    }
    sync_dir(parent)?;
    fs::remove_dir_all(&aside).map_err(|e| QueueError::io(&aside, e))
}

/// The priorities of the endpoint in `dir` that have a log directory.
pub(crate) fn existing_lanes(dir: &Path) -> Result<Vec<usize>, QueueError> {
    let mut lanes = Vec::new();
    for priority in 0..PRIORITIES {
        match fs::metadata(lane_dir(dir, priority)) {
            Ok(meta) if meta.is_dir() => lanes.push(priority),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(QueueError::io(lane_dir(dir, priority), e)),
        }
    }
    Ok(lanes)
}

/// The cursor of a priority; `None` when there is no file yet or it is damaged (logged).
pub(crate) fn read_cursor(dir: &Path, priority: usize) -> Result<Option<CursorState>, QueueError> {
    let path = cursor_path(dir, priority);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(QueueError::io(&path, e)),
    };
    match codec::decode_cursor(&bytes) {
        Ok(state) => Ok(Some(state)),
        Err(damage) => {
            tracing::warn!(path = %path.display(), %damage, "damaged cursor file; every retained entry of this priority will be delivered again");
            Ok(None)
        }
    }
}

/// Replaces the cursor files of the given priorities atomically, then syncs the directory
/// once for all of them.
pub(crate) fn write_cursors(
    dir: &Path,
    cursors: &[(usize, CursorState)],
) -> Result<(), QueueError> {
    for (priority, state) in cursors {
        let path = cursor_path(dir, *priority);
        let tmp = path.with_extension("cursor.tmp");
        let mut file = File::create(&tmp).map_err(|e| QueueError::io(&tmp, e))?;
        file.write_all(&codec::encode_cursor(state))
            .and_then(|()| file.sync_data())
            .map_err(|e| QueueError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| QueueError::io(&path, e))?;
    }
    sync_dir(dir)
}

fn sync_parent(path: &Path) -> Result<(), QueueError> {
    path.parent().map_or(Ok(()), sync_dir)
}

fn sync_dir(dir: &Path) -> Result<(), QueueError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| QueueError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_files_round_trip_and_damage_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_cursor(dir.path(), 3).unwrap(), None);
        let state = CursorState {
            acked: 5,
            done: vec![8],
        };
        write_cursors(dir.path(), &[(3, state.clone())]).unwrap();
        assert_eq!(read_cursor(dir.path(), 3).unwrap(), Some(state));
        fs::write(cursor_path(dir.path(), 3), b"garbage").unwrap();
        assert_eq!(read_cursor(dir.path(), 3).unwrap(), None);
    }

    #[test]
    fn prepare_finishes_removals_and_lists_endpoints() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("%24upstream")).unwrap();
        fs::create_dir(dir.path().join("not.an.endpoint")).unwrap();
        let removed = dir.path().join("gone");
        fs::create_dir_all(lane_dir(&removed, 0)).unwrap();
        remove_endpoint_dir(&removed).unwrap();
        assert!(!removed.exists());
        fs::create_dir_all(dir.path().join(".removing-half")).unwrap();
        let (_lock, found) = prepare_store(dir.path()).unwrap();
        let names: Vec<_> = found.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["$upstream"]);
        assert!(!dir.path().join(".removing-half").exists());
        assert!(matches!(
            prepare_store(dir.path()),
            Err(QueueError::Locked { .. })
        ));
    }
}

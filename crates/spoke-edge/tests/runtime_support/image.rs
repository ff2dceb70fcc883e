//! Tiny test images built from the host's own files: no registry is reachable here, so the
//! Docker tests import `FROM scratch`-style root filesystems. The shell image holds `/bin/sh`,
//! `bash`, `sleep`, `cat` and `env` plus the shared libraries `ldd` names for them; the host
//! runtime image holds only the merged-`/usr` links, for containers that bind-mount the host's
//! `/usr` (and, say, a Python installation) read-only.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use bollard::Docker;
use bollard::query_parameters::CreateImageOptions;
use futures_util::TryStreamExt;

/// Host binaries copied into the image, at the same paths.
const BINARIES: &[&str] = &[
    "/bin/sh",
    "/bin/bash",
    "/bin/sleep",
    "/bin/cat",
    "/usr/bin/env",
];

/// Names resolve from `/etc/hosts` only: its `ExtraHosts` entries are all the tests need, and
/// nothing in a test container queries DNS.
const NSSWITCH: &[u8] = b"hosts: files\n";

/// The absolute paths `ldd` prints for `binary` (libraries and the loader).
fn libraries(binary: &str) -> Vec<PathBuf> {
    let output = Command::new("ldd").arg(binary).output().expect("ldd runs");
    assert!(output.status.success(), "ldd {binary} failed");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter(|word| word.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

fn append_file(tar: &mut tar::Builder<Vec<u8>>, path: &Path, data: &[u8], mode: u32) {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_cksum();
    let relative = path.strip_prefix("/").unwrap_or(path);
    tar.append_data(&mut header, relative, data)
        .expect("tar entry");
}

fn append_dir(tar: &mut tar::Builder<Vec<u8>>, path: &str) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o1777);
    header.set_cksum();
    tar.append_data(&mut header, path, &[][..])
        .expect("tar dir");
}

fn append_link(tar: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    tar.append_link(&mut header, path, target)
        .expect("tar link");
}

/// The root filesystem as a tar archive: `binaries` and their libraries, and `links`
/// (path, target).
fn rootfs(binaries: &[&str], links: &[(&str, &str)]) -> Vec<u8> {
    let mut files = BTreeSet::new();
    for binary in binaries {
        files.insert(PathBuf::from(binary));
        files.extend(libraries(binary));
    }
    let mut tar = tar::Builder::new(Vec::new());
    for file in &files {
        // Follows symlinks (merged /usr, versioned library names): the image gets plain files.
        let data =
            std::fs::read(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        append_file(&mut tar, file, &data, 0o755);
    }
    append_file(&mut tar, Path::new("/etc/nsswitch.conf"), NSSWITCH, 0o644);
    append_dir(&mut tar, "tmp");
    for (path, target) in links {
        append_link(&mut tar, path, target);
    }
    tar.into_inner().expect("tar finishes")
}

/// Imports the shell image as `repo:tag`.
pub async fn import_shell_image(docker: &Docker, repo: &str, tag: &str) {
    import(docker, repo, tag, rootfs(BINARIES, &[])).await;
}

/// Imports the host runtime image as `repo:tag`: `/bin`, `/lib` and `/lib64` link into `/usr`,
/// which containers mount from the host.
#[allow(dead_code)] // used by some of the test crates that include this module
pub async fn import_host_runtime_image(docker: &Docker, repo: &str, tag: &str) {
    let links = [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ];
    import(docker, repo, tag, rootfs(&[], &links)).await;
}

async fn import(docker: &Docker, repo: &str, tag: &str, rootfs: Vec<u8>) {
    let options = CreateImageOptions {
        from_src: Some("-".to_owned()),
        repo: Some(repo.to_owned()),
        tag: Some(tag.to_owned()),
        ..CreateImageOptions::default()
    };
    let body = bollard::body_full(rootfs.into());
    docker
        .create_image(Some(options), Some(body), None)
        .try_for_each(|_| async { Ok(()) })
        .await
        .expect("image import");
}

//! Starting one run of a process module and watching it end: program lookup, environment,
//! process group, output capture and the exit status.
//!
//! Invariants: the child leads its own process group (PGID = its PID), so signals to the group
//! reach everything it started without `setsid`; when the main process ends, whatever is left
//! in its group is killed (as Docker does when a container's init exits); the exit code of a
//! process killed by signal N is reported as 128 + N, as a container's would be.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustix::process::{Pid, Signal};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use super::logfile::{LogSink, MAX_LINE};
use crate::runtime::error::RuntimeError;
use crate::runtime::types::{LogEntry, LogSource, ModuleConfig, ProcessSettings, WORKLOAD_URI_ENV};

/// `PATH` for modules when spoke-edge itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long output capture may go on after the main process ended (a process that escaped the
/// group may still hold the pipes open).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exit {
    /// Exit code, or 128 + signal.
    pub code: Option<i64>,
    /// Extra detail (the signal, or why the status is unknown).
    pub description: Option<String>,
}

/// Finds the program to execute: a name without `/` is searched in `path_var`; a path with `/`
/// is taken relative to `cwd`. Only executable regular files qualify.
pub(crate) fn resolve_program(program: &str, cwd: &Path, path_var: &OsStr) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let candidate = cwd.join(program);
        return is_executable(&candidate).then_some(candidate);
    }
    std::env::split_paths(path_var)
        .map(|dir| cwd.join(dir).join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The complete environment of a module process: `PATH` inherited from spoke-edge (or a
/// default), then the module's env in order, then `IOTEDGE_WORKLOADURI` pointing at the host
/// path of its socket. Nothing else of spoke-edge's environment leaks in.
pub(crate) fn module_env(
    config: &ModuleConfig,
    inherited_path: Option<OsString>,
) -> BTreeMap<String, OsString> {
    let mut env = BTreeMap::new();
    env.insert(
        "PATH".to_owned(),
        inherited_path.unwrap_or_else(|| DEFAULT_PATH.into()),
    );
    for (key, value) in &config.env {
        env.insert(key.clone(), value.into());
    }
    let uri = format!("unix://{}", config.workload_socket.display());
    env.insert(WORKLOAD_URI_ENV.to_owned(), uri.into());
    env
}

/// Checks that the working directory exists (a missing one would make the spawn fail as if
/// the program were missing).
pub(crate) fn check_working_dir(config: &ModuleConfig, cwd: &Path) -> Result<(), RuntimeError> {
    if cwd.is_dir() {
        Ok(())
    } else {
        Err(RuntimeError::InvalidConfig {
            name: config.name.clone(),
            runtime: "process",
            reason: format!("working directory {} does not exist", cwd.display()),
        })
    }
}

/// Spawns the module's program in its own process group with piped output.
pub(crate) fn spawn(
    config: &ModuleConfig,
    settings: &ProcessSettings,
    cwd: &Path,
) -> Result<Child, RuntimeError> {
    check_working_dir(config, cwd)?;
    let env = module_env(config, std::env::var_os("PATH"));
    let program_name = settings.command.first().map_or("", String::as_str);
    let not_found = || RuntimeError::CommandNotFound {
        name: config.name.clone(),
        program: program_name.to_owned(),
    };
    let program = resolve_program(program_name, cwd, &env["PATH"]).ok_or_else(not_found)?;
    let mut command = Command::new(program);
    command
        .arg0(program_name)
        .args(&settings.command[1..])
        .env_clear()
        .envs(&env)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    command.spawn().map_err(|source| match source.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => not_found(),
        _ => RuntimeError::Spawn {
            name: config.name.clone(),
            source,
        },
    })
}

/// Sends `signal` to process group `pgid`; a group that no longer exists is not an error.
pub(crate) fn signal_group(pgid: u32, signal: Signal) -> io::Result<()> {
    let Some(group) = i32::try_from(pgid).ok().and_then(Pid::from_raw) else {
        return Ok(());
    };
    match rustix::process::kill_process_group(group, signal) {
        Err(rustix::io::Errno::SRCH) | Ok(()) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Captures the child's output into `sink` and waits for it to exit. Returns once the main
/// process has exited, its group is killed, and output is drained (or [`DRAIN_TIMEOUT`]).
pub(crate) async fn supervise(mut child: Child, pgid: u32, sink: Arc<LogSink>) -> Exit {
    let mut captures = Vec::new();
    if let Some(out) = child.stdout.take() {
        captures.push(tokio::spawn(capture(out, LogSource::Stdout, sink.clone())));
    }
    if let Some(err) = child.stderr.take() {
        captures.push(tokio::spawn(capture(err, LogSource::Stderr, sink)));
    }
    let status = child.wait().await;
    if let Err(error) = signal_group(pgid, Signal::KILL) {
        tracing::warn!(%error, "killing the rest of the process group failed");
    }
    let aborts: Vec<_> = captures
        .iter()
        .map(tokio::task::JoinHandle::abort_handle)
        .collect();
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        for capture in captures {
            // A capture task only ends by returning; a join error means it was aborted.
            let _ = capture.await;
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("output still open after the module exited; no longer capturing it");
        aborts.iter().for_each(tokio::task::AbortHandle::abort);
    }
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => Exit {
                code: Some(i64::from(code)),
                description: None,
            },
            (None, Some(signal)) => Exit {
                code: Some(128 + i64::from(signal)),
                description: Some(format!("killed by signal {signal}")),
            },
            (None, None) => Exit {
                code: None,
                description: Some("exit status unknown".to_owned()),
            },
        },
        Err(error) => Exit {
            code: None,
            description: Some(format!("waiting for the process failed: {error}")),
        },
    }
}

/// Splits `reader`'s bytes into lines (and [`MAX_LINE`] chunks) and appends them to `sink`.
async fn capture(mut reader: impl AsyncRead + Unpin, source: LogSource, sink: Arc<LogSink>) {
    let emit = |line: &[u8]| {
        sink.append(LogEntry {
            source,
            timestamp: OffsetDateTime::now_utc(),
            line: Bytes::copy_from_slice(line),
        });
    };
    let mut pending = Vec::new();
    let mut chunk = vec![0_u8; 8192];
    loop {
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        let mut start = 0;
        while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
            emit(&pending[start..start + pos]);
            start += pos + 1;
        }
        while pending.len() - start >= MAX_LINE {
            emit(&pending[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        pending.drain(..start);
    }
    if !pending.is_empty() {
        emit(&pending);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::types::ModuleSettings;

    fn config(env: &[(&str, &str)]) -> ModuleConfig {
        ModuleConfig {
            name: "m".parse().unwrap(),
            settings: ModuleSettings::Process(ProcessSettings {
                command: vec!["true".into()],
                working_dir: None,
            }),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            workload_socket: "/run/spoke/m.sock".into(),
            labels: BTreeMap::new(),
            network: None,
            network_aliases: Vec::new(),
        }
    }

    #[test]
    fn environment_is_path_module_env_and_workload_uri() {
        let env = module_env(
            &config(&[("A", "1"), ("A", "2"), ("IOTEDGE_WORKLOADURI", "unix:///x")]),
            Some("/bin".into()),
        );
        let expected: BTreeMap<String, OsString> = [
            ("A", "2"),
            ("IOTEDGE_WORKLOADURI", "unix:///run/spoke/m.sock"),
            ("PATH", "/bin"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect();
        assert_eq!(env, expected);
        let module_path = module_env(&config(&[("PATH", "/opt/bin")]), None);
        assert_eq!(module_path["PATH"], "/opt/bin");
        assert_eq!(module_env(&config(&[]), None)["PATH"], DEFAULT_PATH);
    }

    #[test]
    fn programs_resolve_in_path_or_relative_to_cwd() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = dir.path().join("data.txt");
        std::fs::write(&plain, "x").unwrap();

        let path = OsString::from("/nonexistent:/bin:/usr/bin");
        assert!(resolve_program("sh", dir.path(), &path).is_some());
        assert_eq!(
            resolve_program("./run.sh", dir.path(), &path),
            Some(dir.path().join("./run.sh"))
        );
        assert_eq!(
            resolve_program(script.to_str().unwrap(), Path::new("/"), &path),
            Some(script)
        );
        assert_eq!(
            resolve_program("./data.txt", dir.path(), &path),
            None,
            "not executable"
        );
        assert_eq!(
            resolve_program("spoke-no-such-program", dir.path(), &path),
            None
        );
        assert_eq!(resolve_program("", dir.path(), &path), None);
    }
}

//! Reading Docker's answers: container state to [`ModuleState`], log frames to [`LogEntry`],
//! engine events to [`RuntimeEvent`].

use bollard::container::LogOutput;
use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, EventMessage};
use spoke_core::ids::ModuleId;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::spec::MODULE_LABEL;
use crate::runtime::types::{
    InstanceId, LogEntry, LogSource, ModuleState, RuntimeEvent, RuntimeEventKind, RuntimeStatus,
};

/// Parses a Docker timestamp; Docker's zero time (`0001-01-01T00:00:00Z`) means "never".
pub(crate) fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .filter(|t| t.year() > 1)
}

/// The module name a container carries in its labels.
pub(super) fn module_name(inspect: &ContainerInspectResponse) -> Option<ModuleId> {
    inspect
        .config
        .as_ref()?
        .labels
        .as_ref()?
        .get(MODULE_LABEL)?
        .parse()
        .ok()
}

/// Maps an inspected container to a module state, with aziot-edged's status mapping:
/// created/paused/restarting are `stopped`, exited/removing follow the exit code, `dead` is
/// dead, anything unexpected `unknown`.
pub(super) fn module_state(name: ModuleId, inspect: &ContainerInspectResponse) -> ModuleState {
    let state = inspect.state.clone().unwrap_or_default();
    let finished_at = state.finished_at.as_deref().and_then(parse_time);
    let ran = finished_at.is_some();
    let code = state.exit_code.unwrap_or_default();
    let (status, exit_code) = match state.status {
        Some(ContainerStateStatusEnum::RUNNING | ContainerStateStatusEnum::STOPPING) => {
            (RuntimeStatus::Running, None)
        }
        Some(
            ContainerStateStatusEnum::CREATED
            | ContainerStateStatusEnum::PAUSED
            | ContainerStateStatusEnum::RESTARTING,
        ) => (RuntimeStatus::Stopped, ran.then_some(code)),
        Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::REMOVING) => {
            (RuntimeStatus::from_exit_code(code), Some(code))
        }
        Some(ContainerStateStatusEnum::DEAD) => (RuntimeStatus::Dead, ran.then_some(code)),
        Some(ContainerStateStatusEnum::EMPTY) | None => (RuntimeStatus::Unknown, None),
    };
    let running = status == RuntimeStatus::Running;
    let description = match (state.error.filter(|e| !e.is_empty()), state.oom_killed) {
        (Some(error), _) => Some(error),
        (None, Some(true)) => Some("killed: out of memory".to_owned()),
        _ => None,
    };
    ModuleState {
        name,
        id: InstanceId::new(inspect.id.clone().unwrap_or_default()),
        status,
        exit_code,
        started_at: state.started_at.as_deref().and_then(parse_time),
        finished_at,
        pid: state
            .pid
            .filter(|&pid| running && pid > 0)
            .and_then(|pid| u32::try_from(pid).ok()),
        description,
    }
}

/// Splits a log message requested with `timestamps=true` into its RFC 3339 timestamp and the
/// line (without the trailing newline). A message without a valid timestamp is all line.
pub(crate) fn split_log_message(message: &[u8]) -> (Option<OffsetDateTime>, &[u8]) {
    let message = message.strip_suffix(b"\n").unwrap_or(message);
    let Some(space) = message.iter().position(|&b| b == b' ') else {
        return (None, message);
    };
    let stamp = std::str::from_utf8(&message[..space])
        .ok()
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok());
    match stamp {
        Some(stamp) => (Some(stamp), &message[space + 1..]),
        None => (None, message),
    }
}

/// A log frame as an entry; stdin frames (never requested) are dropped.
pub(super) fn log_entry(output: LogOutput) -> Option<LogEntry> {
    let (source, message) = match output {
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            (LogSource::Stdout, message)
        }
        LogOutput::StdErr { message } => (LogSource::Stderr, message),
        LogOutput::StdIn { .. } => return None,
    };
    let (timestamp, line) = split_log_message(&message);
    Some(LogEntry {
        source,
        timestamp: timestamp.unwrap_or_else(OffsetDateTime::now_utc),
        line: message.slice_ref(line),
    })
}

/// A container `start` or `die` event of a Spoke module as a runtime event.
pub(super) fn event(message: &EventMessage) -> Option<RuntimeEvent> {
    let attributes = message.actor.as_ref()?.attributes.as_ref()?;
    let name = attributes.get(MODULE_LABEL)?.parse().ok()?;
    let kind = match message.action.as_deref()? {
        "start" => RuntimeEventKind::Started,
        "die" => RuntimeEventKind::Exited {
            exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
        },
        _ => return None,
    };
    Some(RuntimeEvent { name, kind })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bollard::models::{ContainerConfig, ContainerState, EventActor};
    use bytes::Bytes;

    use super::*;

    fn inspect(state: ContainerState) -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some("abc".into()),
            state: Some(state),
            config: Some(ContainerConfig {
                labels: Some(HashMap::from([(
                    MODULE_LABEL.to_owned(),
                    "$edgeX".to_owned(),
                )])),
                ..ContainerConfig::default()
            }),
            ..ContainerInspectResponse::default()
        }
    }

    #[test]
    fn maps_container_states() {
        let zero = Some("0001-01-01T00:00:00Z".to_owned());
        let created = inspect(ContainerState {
            status: Some(ContainerStateStatusEnum::CREATED),
            exit_code: Some(0),
            started_at: zero.clone(),
            finished_at: zero,
            ..ContainerState::default()
        });
        let name = module_name(&created).unwrap();
        assert_eq!(name.as_str(), "$edgeX");
        let state = module_state(name.clone(), &created);
        assert_eq!(
            (state.status, state.exit_code, state.started_at),
            (RuntimeStatus::Stopped, None, None)
        );

        let running = inspect(ContainerState {
            status: Some(ContainerStateStatusEnum::RUNNING),
            pid: Some(4321),
            started_at: Some("2026-01-02T03:04:05.123456789Z".into()),
            finished_at: Some("2026-01-01T00:00:00Z".into()),
            exit_code: Some(1),
            ..ContainerState::default()
        });
        let state = module_state(name.clone(), &running);
        assert_eq!(
            (state.status, state.exit_code, state.pid),
            (RuntimeStatus::Running, None, Some(4321))
        );
        assert_eq!(state.started_at.unwrap().nanosecond(), 123_456_789);

        for (code, status) in [(0, RuntimeStatus::Stopped), (137, RuntimeStatus::Failed)] {
            let exited = inspect(ContainerState {
                status: Some(ContainerStateStatusEnum::EXITED),
                exit_code: Some(code),
                pid: Some(0),
                finished_at: Some("2026-01-01T00:00:00Z".into()),
                oom_killed: Some(code != 0),
                ..ContainerState::default()
            });
            let state = module_state(name.clone(), &exited);
            assert_eq!(
                (state.status, state.exit_code, state.pid),
                (status, Some(code), None)
            );
            assert_eq!(state.description.is_some(), code != 0);
        }
        let dead = inspect(ContainerState {
            status: Some(ContainerStateStatusEnum::DEAD),
            ..ContainerState::default()
        });
        assert_eq!(module_state(name, &dead).status, RuntimeStatus::Dead);
    }

    #[test]
    fn splits_timestamps_from_log_messages() {
        let (stamp, line) = split_log_message(b"2026-01-02T03:04:05.000000001Z hello world\n");
        assert_eq!(stamp.unwrap().nanosecond(), 1);
        assert_eq!(line, b"hello world");
        assert_eq!(
            split_log_message(b"no-stamp here"),
            (None, &b"no-stamp here"[..])
        );
        assert_eq!(split_log_message(b""), (None, &b""[..]));
        let entry = log_entry(LogOutput::StdErr {
            message: Bytes::from_static(b"2026-01-02T03:04:05Z \n"),
        })
        .unwrap();
        assert_eq!(
            (entry.source, &entry.line[..]),
            (LogSource::Stderr, &b""[..])
        );
    }

    #[test]
    fn maps_events() {
        let message = |action: &str, attributes: &[(&str, &str)]| EventMessage {
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(
                    attributes
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
            }),
            ..EventMessage::default()
        };
        let die = event(&message("die", &[(MODULE_LABEL, "m"), ("exitCode", "3")])).unwrap();
        assert_eq!(die.kind, RuntimeEventKind::Exited { exit_code: Some(3) });
        let start = event(&message("start", &[(MODULE_LABEL, "m")])).unwrap();
        assert_eq!(start.kind, RuntimeEventKind::Started);
        assert_eq!(event(&message("create", &[(MODULE_LABEL, "m")])), None);
        assert_eq!(event(&message("die", &[])), None);
    }
}

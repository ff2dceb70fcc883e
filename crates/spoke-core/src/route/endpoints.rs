//! Both ends of a route: where messages come from ([`MessageSource`], matched by a route's
//! `FROM` path) and where they go ([`Sink`]).

use std::fmt::{self, Display, Formatter};

use crate::ids::ModuleId;
use crate::literal::write_quoted;
use crate::message::Message;

/// Where a message came from (spec §4.1 "How sources match").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageSource {
    /// Telemetry of a leaf or downstream device: `/messages/`.
    Telemetry,
    /// A module's message without an output name: `/messages/modules/{module}/`.
    Module {
        /// The sending module.
        module: String,
    },
    /// A module's output: `/messages/modules/{module}/outputs/{output}/`.
    ModuleOutput {
        /// The sending module.
        module: String,
        /// The output name (`$.on`).
        output: String,
    },
    /// A twin change notification: `/twinChangeNotifications`.
    TwinChangeNotification,
}

impl MessageSource {
    /// The source path that `FROM` paths are matched against.
    pub fn path(&self) -> String {
        match self {
            Self::Telemetry => "/messages/".to_owned(),
            Self::Module { module } => format!("/messages/modules/{module}/"),
            Self::ModuleOutput { module, output } => {
                format!("/messages/modules/{module}/outputs/{output}/")
            }
            Self::TwinChangeNotification => "/twinChangeNotifications".to_owned(),
        }
    }

    /// The source of a device-to-cloud message by its system properties: a module's output
    /// when `$.cmid` and a non-empty `$.on` are set, a module's message when only `$.cmid`
    /// is, else device telemetry.
    pub fn of_message(msg: &Message) -> Self {
        let system = &msg.system;
        match (&system.connection_module_id, &system.output_name) {
            (Some(module), Some(output)) if !output.is_empty() => Self::ModuleOutput {
                module: module.clone(),
                output: output.clone(),
            },
            (Some(module), _) => Self::Module {
                module: module.clone(),
            },
            (None, _) => Self::Telemetry,
        }
    }
}

/// The normalized form of a source path for prefix matching (edgeHub's
/// `BaseMessageSource.AppendSingleTrailingSlash`): trimmed, trailing `/`s replaced by one,
/// lower-cased.
fn with_one_slash(path: &str) -> String {
    format!("{}/", path.trim().trim_end_matches('/')).to_lowercase()
}

/// One step of a `FROM` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Star,
    Name(String),
}

/// A route's `FROM` path.
///
/// Matching follows edgeHub's `CustomMessageSource`: trailing `*`s are trimmed, then
/// (unless only `/` is left) trailing `/`s, and a message matches when its source path,
/// normalized to one trailing `/`, starts with the result plus `/`, ignoring case. So
/// `/messages/*` matches all messages but not twin change notifications, `/*` matches
/// everything, and a `*` elsewhere is a literal character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    pub(crate) steps: Vec<Step>,
    prefix: String,
}

impl Source {
    pub(crate) fn new(steps: Vec<Step>) -> Self {
        let text = Self::text(&steps);
        let trimmed = text.trim_end_matches('*');
        let trimmed = if trimmed.len() > 1 {
            trimmed.trim_end_matches('/')
        } else {
            trimmed
        };
        Self {
            prefix: with_one_slash(trimmed),
            steps,
        }
    }

    /// The path as edgeHub reads it: `/` and the steps, without spaces.
    fn text(steps: &[Step]) -> String {
        steps
            .iter()
            .map(|step| match step {
                Step::Star => "/*".to_owned(),
                Step::Name(name) => format!("/{name}"),
            })
            .collect()
    }

    pub(crate) fn matches(&self, source: &MessageSource) -> bool {
        with_one_slash(&source.path()).starts_with(&self.prefix)
    }

    /// Whether this is exactly the twin change notification source.
    pub(crate) fn is_twin_changes(&self) -> bool {
        self.prefix == "/twinchangenotifications/"
    }
}

impl Display for Source {
    /// Writes the steps joined by `/`, with a space before a `/` that follows a `*`, so that
    /// the text never holds `*/` (which would close a `/* ... */` comment).
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut after_star = false;
        for step in &self.steps {
            f.write_str(if after_star { " /" } else { "/" })?;
            let text = match step {
                Step::Star => "*",
                Step::Name(name) => name,
            };
            f.write_str(text)?;
            after_star = text.ends_with('*');
        }
        Ok(())
    }
}

/// Where a route delivers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sink {
    /// `$upstream`: the cloud, or the parent edge hub in nested setups.
    Upstream,
    /// `BrokeredEndpoint("/modules/{module}/inputs/{input}")`: input `input` of module
    /// `module` on this edge device.
    ModuleInput {
        /// The receiving module.
        module: ModuleId,
        /// The input name: not empty, no `/`, `+` or `#`.
        input: String,
    },
}

impl Display for Sink {
    /// Writes the sink as in route text: `$upstream` or
    /// `BrokeredEndpoint("/modules/m/inputs/i")` (a `*` before a `/`, possible in module IDs,
    /// is written `\u002a` so that the text never closes a comment).
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::Upstream => f.write_str("$upstream"),
            Self::ModuleInput { module, input } => {
                f.write_str("BrokeredEndpoint(")?;
                write_quoted(f, &format!("/modules/{module}/inputs/{input}"), '"', true)?;
                f.write_str(")")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(path: &str) -> Source {
        let steps = path
            .split('/')
            .skip(1)
            .map(|s| {
                if s == "*" {
                    Step::Star
                } else {
                    Step::Name(s.to_owned())
                }
            })
            .collect();
        Source::new(steps)
    }

    fn output(module: &str, output: &str) -> MessageSource {
        MessageSource::ModuleOutput {
            module: module.to_owned(),
            output: output.to_owned(),
        }
    }

    #[test]
    fn paths() {
        assert_eq!(MessageSource::Telemetry.path(), "/messages/");
        assert_eq!(
            MessageSource::Module { module: "m".into() }.path(),
            "/messages/modules/m/"
        );
        assert_eq!(output("m", "o").path(), "/messages/modules/m/outputs/o/");
        assert_eq!(
            MessageSource::TwinChangeNotification.path(),
            "/twinChangeNotifications"
        );
    }

    #[test]
    fn prefix_matching() {
        let all = [
            MessageSource::Telemetry,
            MessageSource::Module {
                module: "m1".into(),
            },
            output("m1", "out"),
            output("m10", "out"),
            MessageSource::TwinChangeNotification,
        ];
        let matching = |path: &str| -> Vec<bool> {
            let source = source(path);
            all.iter().map(|s| source.matches(s)).collect()
        };
        assert_eq!(matching("/*"), [true; 5]);
        assert_eq!(matching("/messages/*"), [true, true, true, true, false]);
        assert_eq!(matching("/messages"), [true, true, true, true, false]);
        assert_eq!(
            matching("/MESSAGES/Modules/M1/*"),
            [false, true, true, false, false]
        );
        assert_eq!(
            matching("/messages/modules/m1/outputs/*"),
            [false, false, true, false, false]
        );
        assert_eq!(
            matching("/messages/modules/m1/outputs/out"),
            [false, false, true, false, false]
        );
        assert_eq!(matching("/messages/modules/*/outputs/out"), [false; 5]);
        assert_eq!(
            matching("/twinChangeNotifications"),
            [false, false, false, false, true]
        );
        assert!(source("/twinchangenotifications").is_twin_changes());
        assert!(!source("/*").is_twin_changes());
    }

    #[test]
    fn source_of_message() {
        let mut msg = Message::new("x");
        assert_eq!(MessageSource::of_message(&msg), MessageSource::Telemetry);
        msg.system.connection_module_id = Some("m".into());
        msg.system.output_name = Some(String::new());
        assert_eq!(
            MessageSource::of_message(&msg),
            MessageSource::Module { module: "m".into() }
        );
        msg.system.output_name = Some("o".into());
        assert_eq!(MessageSource::of_message(&msg), output("m", "o"));
    }

    #[test]
    fn display() {
        assert_eq!(source("/messages/*").to_string(), "/messages/*");
        assert_eq!(source("/a*/b/*/c").to_string(), "/a* /b/* /c");
        let sink = Sink::ModuleInput {
            module: ModuleId::parse("filter").unwrap(),
            input: "in\"1".into(),
        };
        assert_eq!(
            sink.to_string(),
            r#"BrokeredEndpoint("/modules/filter/inputs/in\"1")"#
        );
        assert_eq!(Sink::Upstream.to_string(), "$upstream");
    }
}

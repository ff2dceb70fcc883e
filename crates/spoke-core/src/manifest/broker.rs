//! The MQTT broker authorization policy of the `$edgeHub` desired properties, schema 1.2 and
//! 1.3: `mqttBroker.authorizations`, the policy format of Azure IoT Edge 1.2's experimental
//! broker ("Publish and subscribe with Azure IoT Edge"; edgeHub's `AuthorizationProperties`,
//! `BrokerPropertiesValidator` and `EdgeHubConfigParser.ParseAuthorizationConfig`; the broker's
//! `policy` and `mqtt-policy` crates). Spoke's edge hub uses it to let clients publish and
//! subscribe on topics of their own.
//!
//! # Shape
//!
//! ```json
//! "mqttBroker": {"authorizations": [
//!   {"identities": ["{{iot:identity}}"], "allow": [{"operations": ["mqtt:connect"]}]},
//!   {"description": "modules of this device publish alerts, not private ones",
//!    "identities": ["{{iot:this_device_id}}/{{iot:module_id}}"],
//!    "allow": [{"operations": ["mqtt:publish"], "resources": ["alerts/{{iot:module_id}}/#"]}],
//!    "deny": [{"operations": ["mqtt:publish"], "resources": ["alerts/+/private"]}]}
//! ]}
//! ```
//!
//! - `authorizations`: an array of statements; absent, `null` or `[]` is the empty policy,
//!   which denies everything.
//! - A statement: `identities` (required, a non-empty array), `description` (optional text,
//!   checked and not kept), `allow` and `deny` (optional arrays of rules, at least one rule
//!   between them).
//! - A rule: `operations` (required, non-empty; each exactly `mqtt:connect`, `mqtt:publish` or
//!   `mqtt:subscribe`, compared case-sensitively as edgeHub does) and `resources` (MQTT topic
//!   filters, MQTT 3.1.1 §4.7; required and non-empty unless every operation is connect).
//! - As everywhere in the manifest model, field names match case-insensitively, `null` is
//!   absent, list items may be numbers or booleans (read as their JSON text), and unknown keys,
//!   `bridges` among them, are ignored.
//!
//! # Identities and variables
//!
//! A client is named by its MQTT client ID, `{device}` or `{device}/{module}` ([`Client`]), or
//! by that ID qualified with the hub's host name, `{hub}/{device}[/{module}]` (the broker's
//! authentication ID, as later Azure docs write identities: `myhub.azure-devices.net/sensor_1`).
//! Identities and resources may contain variables, replaced per request:
//!
//! | variable | value |
//! |---|---|
//! | `{{iot:identity}}`, `{{mqtt:client_id}}` | the client ID |
//! | `{{iot:device_id}}` | the client's device |
//! | `{{iot:module_id}}` | the client's module; empty for a device |
//! | `{{iot:this_device_id}}` | the edge device that runs the policy |
//!
//! A variable is any `{{`, then no `}`, then `}}` (edgeHub's `{{[^}]*}}`); a name not in the
//! table is refused ([`ManifestError::UnknownVariable`]); a `{{` without its `}}` is text. An
//! identity matches a client when, after substitution, it equals the client ID or the
//! qualified ID (the host name compared exactly, as the edge hub's configuration spells it): so
//! `{{iot:identity}}` matches every client and `{{iot:this_device_id}}/{{iot:module_id}}` the
//! modules of this edge device.
//!
//! # Evaluation ([`BrokerPolicy::allows`])
//!
//! Everything is denied by default. Statements are tried in order; the first whose identities
//! match the client and which has a rule matching the request decides: denied if one of its
//! deny rules matches (deny wins within a statement), else allowed. A statement whose
//! identities match but whose rules do not passes on to the next. A rule matches when it lists
//! the operation and, for publish and subscribe, one of its resources (after substitution)
//! covers the requested topic or filter; the caller judges coverage, since topic matching
//! lives in `spoke-mqtt`. This is edgeHub's reading: it turns each statement into its deny
//! rules followed by its allow rules and lets the first match in that order decide.
//!
//! # Spoke's choices
//!
//! - Resources on a connect rule are accepted and ignored for connect, as in Azure (the
//!   validator accepts them, the broker's matcher ignores them for connect): a rule
//!   `["mqtt:connect", "mqtt:publish"]` with resources `["a"]` allows connecting, and publishing
//!   on `a`.
//! - A statement without any rule is refused (edgeHub takes it; it could never decide).
//! - A blank identity is refused (edgeHub refuses only the empty string), and an identity
//!   without variables must be a valid client ID or one qualified by a host name (a first
//!   segment with a dot). `hub.example.net/d` is both: device `hub.example.net`'s module `d`,
//!   and device `d` of hub `hub.example.net`; it matches either client. `{{iot:identity}}` is
//!   the client ID, not the qualified ID.
//! - A deny rule stops a subscription only when one of its filters covers the whole requested
//!   filter, as in edgeHub's broker (which matched the requested filter like a topic name):
//!   with allow `a/#` and deny `a/secret/#` in one statement, subscribing to `a/#` is allowed
//!   and receives `a/secret/x`. Keep allowed subscription filters as narrow as meant.
//! - A substituted value holding `+`, `#` or U+0000, or a substitution longer than a topic
//!   filter may be, makes that resource match nothing for the request, so a client's own name
//!   can never widen a filter ([`crate::ids`] refuses those characters anyway).
//! - For schema 1.0 and 1.1, `mqttBroker` is ignored, as edgeHub's 1.0/1.1 models have no such
//!   field. edgeHub after the broker's removal (iotedge #6410) ignores it in every version;
//!   Spoke acts on it from 1.2, so a malformed policy is refused rather than silently inert.
//!
//! Invariants of a parsed policy: every statement has an identity and a rule; every rule has
//! an operation, and a resource unless all its operations are connect; identities and
//! resources use only the variables above; resources are valid topic filters as written, and
//! every filter handed to `covers` is one too.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

use super::error::{ManifestError, clip};
use super::json::{Arr, Obj};
use crate::ids::{Identity, ModuleId};

/// The variables, for error messages.
const KNOWN_VARIABLES: &str = "{{iot:identity}}, {{iot:device_id}}, {{iot:module_id}}, \
                               {{mqtt:client_id}} or {{iot:this_device_id}}";

/// What an identity must be, for error messages.
const IDENTITY: &str = "a client ID {device} or {device}/{module}, possibly after the hub's \
                        host name, or variables such as {{iot:identity}}";

/// The longest topic filter, in bytes (MQTT 3.1.1 §1.5.3).
const MAX_FILTER_LEN: usize = 65_535;

/// An MQTT operation a policy rule governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `mqtt:connect`: opening a session.
    Connect,
    /// `mqtt:publish`: publishing on a topic.
    Publish,
    /// `mqtt:subscribe`: subscribing with a topic filter.
    Subscribe,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 3] = [Operation::Connect, Operation::Publish, Operation::Subscribe];

    /// The name in a policy: `mqtt:connect`, `mqtt:publish` or `mqtt:subscribe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Connect => "mqtt:connect",
            Operation::Publish => "mqtt:publish",
            Operation::Subscribe => "mqtt:subscribe",
        }
    }

    /// Reads a policy name, exactly (case-sensitively) as edgeHub does.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == name)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The connected client a request comes from; its client ID is `device` or `device/module`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client<'a> {
    /// The client's device, or the device of its module.
    pub device: &'a str,
    /// The client's module, when it is a module.
    pub module: Option<&'a str>,
}

impl<'a> Client<'a> {
    /// The MQTT client ID: `device` or `device/module`.
    pub fn client_id(&self) -> Cow<'a, str> {
        match self.module {
            None => Cow::Borrowed(self.device),
            Some(module) => Cow::Owned(format!("{}/{module}", self.device)),
        }
    }
}

impl<'a> From<&'a Identity> for Client<'a> {
    fn from(identity: &'a Identity) -> Self {
        Client {
            device: identity.device.as_str(),
            module: identity.module.as_ref().map(ModuleId::as_str),
        }
    }
}

/// A parsed `mqttBroker` authorization policy (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerPolicy {
    /// The statements, in evaluation order.
    pub(super) statements: Vec<Statement>,
}

/// One authorization statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Statement {
    /// Whom the statement is about; never empty.
    pub(super) identities: Vec<Template>,
    /// `allow` rules.
    pub(super) allow: Vec<Rule>,
    /// `deny` rules; with `allow`, never both empty.
    pub(super) deny: Vec<Rule>,
}

/// One `allow` or `deny` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rule {
    /// The operations; never empty.
    pub(super) operations: Vec<Operation>,
    /// Topic filters; empty only when every operation is connect.
    pub(super) resources: Vec<Template>,
}

/// A policy variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Variable {
    /// `{{iot:identity}}`.
    Identity,
    /// `{{mqtt:client_id}}`.
    ClientId,
    /// `{{iot:device_id}}`.
    DeviceId,
    /// `{{iot:module_id}}`.
    ModuleId,
    /// `{{iot:this_device_id}}`.
    ThisDeviceId,
}

/// The variables by their written form.
const VARIABLES: [(&str, Variable); 5] = [
    ("{{iot:identity}}", Variable::Identity),
    ("{{mqtt:client_id}}", Variable::ClientId),
    ("{{iot:device_id}}", Variable::DeviceId),
    ("{{iot:module_id}}", Variable::ModuleId),
    ("{{iot:this_device_id}}", Variable::ThisDeviceId),
];

/// A piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece {
    /// Text as written.
    Text(String),
    /// A variable, replaced per request.
    Var(Variable),
}

/// An identity or resource: the text as written, split into text and variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Template {
    /// As written.
    pub(super) text: String,
    /// Non-empty text pieces and variables, in order.
    pub(super) pieces: Vec<Piece>,
}

impl Template {
    /// Splits `text` at its variables, or returns the first unknown variable.
    pub(super) fn parse(text: &str) -> Result<Self, &str> {
        let mut pieces = Vec::new();
        let mut text_start = 0;
        let mut from = 0;
        while let Some(offset) = text[from..].find("{{") {
            let start = from + offset;
            let Some(close) = text[start + 2..].find('}').map(|i| start + 2 + i) else {
                break;
            };
            if !text[close..].starts_with("}}") {
                from = start + 1;
                continue;
            }
            let end = close + 2;
            let written = &text[start..end];
            let (_, variable) = VARIABLES
                .iter()
                .find(|(name, _)| *name == written)
                .ok_or(written)?;
            if text_start < start {
                pieces.push(Piece::Text(text[text_start..start].to_owned()));
            }
            pieces.push(Piece::Var(*variable));
            text_start = end;
            from = end;
        }
        if text_start < text.len() {
            pieces.push(Piece::Text(text[text_start..].to_owned()));
        }
        Ok(Template {
            text: text.to_owned(),
            pieces,
        })
    }

    /// Whether the template has no variables.
    fn is_literal(&self) -> bool {
        self.pieces
            .iter()
            .all(|piece| matches!(piece, Piece::Text(_)))
    }

    /// Whether the template, with `subject`'s values, spells `target` exactly.
    fn spells(&self, subject: &Subject<'_>, target: &str) -> bool {
        let mut rest = target;
        for piece in &self.pieces {
            match rest.strip_prefix(subject.value(piece)) {
                Some(after) => rest = after,
                None => return false,
            }
        }
        rest.is_empty()
    }

    /// The template with `subject`'s values, or `None` when a value holds a wildcard or U+0000
    /// or the result is too long for a topic filter.
    fn expand<'s>(&'s self, subject: &'s Subject<'_>) -> Option<Cow<'s, str>> {
        if self.is_literal() {
            return Some(Cow::Borrowed(&self.text));
        }
        let mut out = String::with_capacity(self.text.len());
        for piece in &self.pieces {
            let value = subject.value(piece);
            if matches!(piece, Piece::Var(_)) && value.contains(['+', '#', '\0']) {
                return None;
            }
            out.push_str(value);
        }
        (out.len() <= MAX_FILTER_LEN).then_some(Cow::Owned(out))
    }
}

/// The values of the variables for one request.
struct Subject<'a> {
    client_id: Cow<'a, str>,
    /// `{hub}/{client ID}`.
    qualified_id: String,
    device: &'a str,
    module: &'a str,
    this_device: &'a str,
}

impl Subject<'_> {
    /// The text of `piece` for this request.
    fn value<'s>(&'s self, piece: &'s Piece) -> &'s str {
        match piece {
            Piece::Text(text) => text,
            Piece::Var(Variable::Identity | Variable::ClientId) => &self.client_id,
            Piece::Var(Variable::DeviceId) => self.device,
            Piece::Var(Variable::ModuleId) => self.module,
            Piece::Var(Variable::ThisDeviceId) => self.this_device,
        }
    }
}

impl Rule {
    /// Whether the rule governs `op` on `resource` for `subject`.
    fn matches(
        &self,
        subject: &Subject<'_>,
        op: Operation,
        resource: Option<&str>,
        covers: &impl Fn(&str, &str) -> bool,
    ) -> bool {
        if !self.operations.contains(&op) {
            return false;
        }
        match (op, resource) {
            (Operation::Connect, _) => true,
            (_, Some(requested)) => self.resources.iter().any(|filter| {
                filter
                    .expand(subject)
                    .is_some_and(|filter| covers(&filter, requested))
            }),
            (_, None) => false,
        }
    }
}

impl BrokerPolicy {
    /// Reads the `mqttBroker` object found at `path` (such as `$edgeHub.mqttBroker`); errors
    /// name the offending place below it, such as
    /// `$edgeHub.mqttBroker.authorizations[2].allow[0].operations[1]`.
    pub fn from_json(broker: &Value, path: &str) -> Result<Self, ManifestError> {
        let broker = Obj::new(broker, path.to_owned())?;
        let statements = match broker.opt_array("authorizations", "an array of statements")? {
            Some(list) => list
                .items()
                .map(|(path, item)| parse_statement(&Obj::new(item, path)?))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(BrokerPolicy { statements })
    }

    /// Whether `client`, connected to edge device `this_device` of hub `hub_hostname`, may do
    /// `op` on `resource`:
    /// the topic name for publish, the requested topic filter for subscribe, `None` for
    /// connect (a resource given for connect is ignored; publish or subscribe without one is
    /// denied).
    ///
    /// `covers(filter, resource)` tells whether the policy's topic filter `filter` (valid,
    /// variables replaced) covers `resource`: for publish, whether it matches the topic name;
    /// for subscribe, whether every topic the requested filter matches is matched by `filter`.
    pub fn allows(
        &self,
        client: &Client<'_>,
        this_device: &str,
        hub_hostname: &str,
        op: Operation,
        resource: Option<&str>,
        covers: impl Fn(&str, &str) -> bool,
    ) -> bool {
        let client_id = client.client_id();
        let subject = Subject {
            qualified_id: format!("{hub_hostname}/{client_id}"),
            client_id,
            device: client.device,
            module: client.module.unwrap_or(""),
            this_device,
        };
        let applies = |rule: &Rule| rule.matches(&subject, op, resource, &covers);
        for statement in &self.statements {
            let mine = statement.identities.iter().any(|identity| {
                identity.spells(&subject, &subject.client_id)
                    || identity.spells(&subject, &subject.qualified_id)
            });
            if !mine {
                continue;
            }
            if statement.deny.iter().any(&applies) {
                return false;
            }
            if statement.allow.iter().any(&applies) {
                return true;
            }
        }
        false
    }
}

/// Whether `filter` is a valid MQTT topic filter: non-empty, at most 65,535 bytes, no U+0000,
/// `#` alone in the last level and `+` alone in its level (MQTT 3.1.1 §1.5.3, §4.7).
pub(super) fn is_valid_filter(filter: &str) -> bool {
    let mut levels = filter.split('/').peekable();
    let mut wildcards_placed = true;
    while let Some(level) = levels.next() {
        wildcards_placed &= match level {
            "+" => true,
            "#" => levels.peek().is_none(),
            _ => !level.contains(['+', '#']),
        };
    }
    wildcards_placed
        && !filter.is_empty()
        && filter.len() <= MAX_FILTER_LEN
        && !filter.contains('\0')
}

/// [`ManifestError::InvalidValue`] for the text `text` at `path`.
fn invalid(path: String, text: &str, expected: &'static str) -> ManifestError {
    ManifestError::InvalidValue {
        path,
        found: clip(&Value::from(text).to_string()),
        expected,
    }
}

/// Parses an identity or resource at `path`, refusing unknown variables.
fn template(path: &str, text: &str) -> Result<Template, ManifestError> {
    Template::parse(text).map_err(|variable| ManifestError::UnknownVariable {
        path: path.to_owned(),
        variable: clip(variable),
        known: KNOWN_VARIABLES,
    })
}

/// Reads one statement.
fn parse_statement(statement: &Obj<'_>) -> Result<Statement, ManifestError> {
    let identities = non_empty(statement, "identities", "at least one identity")?
        .texts()?
        .into_iter()
        .map(|(path, text)| parse_identity(path, &text))
        .collect::<Result<_, _>>()?;
    statement.opt_text("description")?;
    let allow = parse_rules(statement, "allow")?;
    let deny = parse_rules(statement, "deny")?;
    if allow.is_empty() && deny.is_empty() {
        return Err(ManifestError::InvalidValue {
            path: statement.path().to_owned(),
            found: clip(&statement.to_value().to_string()),
            expected: "a statement with at least one allow or deny rule",
        });
    }
    Ok(Statement {
        identities,
        allow,
        deny,
    })
}

/// A required array field with at least one item; `expected` says what, for the message.
fn non_empty<'a>(
    obj: &Obj<'a>,
    key: &str,
    expected: &'static str,
) -> Result<Arr<'a>, ManifestError> {
    let list = obj
        .opt_array(key, "a non-empty array")?
        .ok_or_else(|| obj.missing(key))?;
    if list.is_empty() {
        return Err(list.invalid(expected));
    }
    Ok(list)
}

/// Reads one identity.
fn parse_identity(path: String, text: &str) -> Result<Template, ManifestError> {
    if text.trim().is_empty() {
        return Err(invalid(path, text, IDENTITY));
    }
    let identity = template(&path, text)?;
    let client_id = |id: &str| Identity::from_client_id(id).is_ok();
    let qualified = |id: &str| {
        id.split_once('/')
            .is_some_and(|(host, rest)| host.contains('.') && client_id(rest))
    };
    if identity.is_literal() && !client_id(text) && !qualified(text) {
        return Err(invalid(path, text, IDENTITY));
    }
    Ok(identity)
}

/// Reads the `allow` or `deny` rules of a statement.
fn parse_rules(statement: &Obj<'_>, key: &str) -> Result<Vec<Rule>, ManifestError> {
    match statement.opt_array(key, "an array of rules")? {
        Some(rules) => rules
            .items()
            .map(|(path, rule)| parse_rule(&Obj::new(rule, path)?))
            .collect(),
        None => Ok(Vec::new()),
    }
}

/// Reads one rule.
fn parse_rule(rule: &Obj<'_>) -> Result<Rule, ManifestError> {
    const OPERATIONS: &str = "mqtt:connect, mqtt:publish or mqtt:subscribe";
    let operations = non_empty(rule, "operations", "at least one operation")?
        .texts()?
        .into_iter()
        .map(|(path, name)| Operation::parse(&name).ok_or_else(|| invalid(path, &name, OPERATIONS)))
        .collect::<Result<Vec<_>, _>>()?;
    let listed = rule.opt_array("resources", "an array of MQTT topic filters")?;
    let resources = match &listed {
        Some(list) => list
            .texts()?
            .into_iter()
            .map(|(path, text)| parse_resource(path, &text))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    if resources.is_empty() && operations.iter().any(|&op| op != Operation::Connect) {
        return Err(match listed {
            Some(list) => {
                list.invalid("at least one topic filter for mqtt:publish or mqtt:subscribe")
            }
            None => rule.missing("resources"),
        });
    }
    Ok(Rule {
        operations,
        resources,
    })
}

/// Reads one resource, a topic filter that may hold variables.
fn parse_resource(path: String, text: &str) -> Result<Template, ManifestError> {
    let resource = template(&path, text)?;
    if !is_valid_filter(text) {
        return Err(invalid(
            path,
            text,
            "an MQTT topic filter (MQTT 3.1.1 §4.7: + and # fill a whole level, # only the last)",
        ));
    }
    Ok(resource)
}

#[cfg(test)]
#[path = "broker_tests.rs"]
mod tests;

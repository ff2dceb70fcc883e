//! Evaluation of route conditions against one message.
//!
//! Values are `undefined`, `null`, bool, number (never NaN: a NaN result is `undefined`),
//! string, and the *null string*: an application or system property present without a value
//! (a bare `key` in the property bag), which is defined and null but compares as undefined.
//!
//! Property lookups (names ignore case, as edgeHub keeps properties in case-insensitive
//! dictionaries; of repeated keys the last wins):
//! - `name`: the application property `name`;
//! - `$name`: the application property `$name`, else the system property `name` (see
//!   [`system_property`]); `{$name}` only the system property;
//! - `$body.a.b[0]`: the application property `$body.a.b` (not for paths with `[n]`, nor in
//!   braces), else the body query. A body is queried only when `$contentType` is
//!   `application/json` and `$contentEncoding` is `utf-8`, `utf-16` or `utf-32` (little
//!   endian, as .NET's `Encoding.Unicode` and `Encoding.UTF32`), all ignoring case, and the
//!   body is a JSON object. Names match exactly. A JSON string, number, bool or null is the
//!   value; an object or array, a missing step, or an unreadable body is `undefined`.
//!
//! Operators:
//! - comparisons: `undefined` when either side is undefined or a null string; values of the
//!   same kind compare naturally (strings by code point, `false < true`, `null = null`);
//!   values of different kinds (only possible with `$body` values) order by kind,
//!   bool < number < string < null, as edgeHub's `QueryValue` does;
//! - arithmetic on two numbers, `||` on two strings, unary `-` on a number; else `undefined`;
//! - `AND`, `OR`, `NOT` in three-valued logic, with edgeHub's rules for `null`: `null AND x`
//!   is null, `null OR x` is `x` (null if both are null), `NOT null` is true;
//! - `a ?? b` is `a` unless `a` is undefined.
//!
//! A condition matches only when it evaluates to boolean `true`.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Ordering;

use serde_json::Value as Json;

use super::ast::{BinOp, BodyStep, Expr, Literal, Lookup};
use crate::message::{Message, SystemProperties};

/// The value of an expression, borrowing from the route or the message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Undefined,
    Null,
    /// A property present without a value.
    NullStr,
    Bool(bool),
    /// Never NaN.
    Num(f64),
    Str(Cow<'a, str>),
}

impl Value<'_> {
    /// A number, or `undefined` for NaN.
    pub(crate) fn num(n: f64) -> Self {
        if n.is_nan() {
            Self::Undefined
        } else {
            Self::Num(n)
        }
    }

    /// The value of a property that may be present without a value.
    fn property(value: Option<&str>) -> Value<'_> {
        value.map_or(Value::NullStr, |v| Value::Str(Cow::Borrowed(v)))
    }

    /// edgeHub's order of value kinds, for comparisons across kinds.
    fn rank(&self) -> u8 {
        match self {
            Self::Bool(_) => 1,
            Self::Num(_) => 2,
            Self::Str(_) => 3,
            _ => 4,
        }
    }
}

/// Whether two property names are the same, ignoring case.
fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || (!a.is_ascii() && a.to_lowercase() == b.to_lowercase())
}

/// The system properties a `$name` lookup knows, and where a [`Message`] keeps them: a typed
/// field of [`SystemProperties`], or a key of [`SystemProperties::other`].
const SYSTEM_FIELDS: [&str; 10] = [
    "messageId",
    "correlationId",
    "userId",
    "contentType",
    "contentEncoding",
    "to",
    "outputName",
    "connectionDeviceId",
    "connectionModuleId",
    "ack",
];

/// The value of system property `name` (ignoring case) of `system`, or `None` when absent.
///
/// The typed fields answer to `messageId`, `correlationId`, `userId`, `contentType`,
/// `contentEncoding`, `to`, `outputName`, `connectionDeviceId`, `connectionModuleId` and
/// `ack`. Every other name is looked up in [`SystemProperties::other`] under its wire key:
/// `$.schema` for `messageSchema`, `$.ctime` for `creationTime`, and `$.<name>` for the rest
/// (so the edge hub stamps `$.inputName`, `$.enqueuedTime` and `$.connectionAuthMethod`).
pub fn system_property<'m>(system: &'m SystemProperties, name: &str) -> Option<Option<&'m str>> {
    let fields = [
        &system.message_id,
        &system.correlation_id,
        &system.user_id,
        &system.content_type,
        &system.content_encoding,
        &system.to,
        &system.output_name,
        &system.connection_device_id,
        &system.connection_module_id,
        &system.ack,
    ];
    if let Some(i) = SYSTEM_FIELDS.iter().position(|f| same_name(f, name)) {
        return fields[i].as_deref().map(Some);
    }
    let key = if same_name(name, "messageSchema") {
        Cow::Borrowed("$.schema")
    } else if same_name(name, "creationTime") {
        Cow::Borrowed("$.ctime")
    } else {
        Cow::Owned(format!("$.{name}"))
    };
    system
        .other
        .iter()
        .rev()
        .find(|(k, _)| same_name(k, &key))
        .map(|(_, v)| v.as_deref())
}

/// One message being routed: the message and its JSON body, parsed at most once however
/// many routes look at it.
pub(crate) struct Scope<'m> {
    msg: &'m Message,
    json: OnceCell<Option<Json>>,
}

impl<'m> Scope<'m> {
    pub(crate) fn new(msg: &'m Message) -> Self {
        Self {
            msg,
            json: OnceCell::new(),
        }
    }

    /// The body as a JSON object, decoded per `$contentEncoding` (UTF-8 when absent or
    /// unknown), or `None` when it is not one.
    fn json(&self) -> Option<&Json> {
        self.json
            .get_or_init(|| {
                let encoding = self.msg.system.content_encoding.as_deref().unwrap_or("");
                let text = decode(&self.msg.body, encoding);
                let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
                serde_json::from_str(text).ok().filter(Json::is_object)
            })
            .as_ref()
    }

    /// The body for `$body` queries: only with the JSON content type and a known encoding.
    fn queryable_body(&self) -> Option<&Json> {
        let system = &self.msg.system;
        let json = system
            .content_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("application/json"));
        let encoding = system.content_encoding.as_deref().is_some_and(|e| {
            ["utf-8", "utf-16", "utf-32"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(e))
        });
        if json && encoding { self.json() } else { None }
    }

    fn app(&self, name: &str) -> Option<Value<'m>> {
        self.msg
            .app
            .iter()
            .rev()
            .find(|(k, _)| same_name(k, name))
            .map(|(_, v)| Value::property(v.as_deref()))
    }

    fn system(&self, name: &str) -> Value<'m> {
        system_property(&self.msg.system, name).map_or(Value::Undefined, Value::property)
    }
}

/// Decodes `body` in `encoding` (`utf-16` and `utf-32` little endian), replacing invalid
/// sequences.
fn decode<'b>(body: &'b [u8], encoding: &str) -> Cow<'b, str> {
    let units = |width: usize| {
        body.chunks(width).map(move |c| {
            c.iter()
                .rev()
                .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
        })
    };
    if encoding.eq_ignore_ascii_case("utf-16") {
        let utf16 = units(2).map(|u| u as u16);
        Cow::Owned(
            char::decode_utf16(utf16)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
        )
    } else if encoding.eq_ignore_ascii_case("utf-32") {
        Cow::Owned(
            units(4)
                .map(|u| char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
        )
    } else {
        String::from_utf8_lossy(body)
    }
}

/// Follows `steps` in `json`; objects and arrays are not values.
fn body_value<'j>(json: &'j Json, steps: &[BodyStep]) -> Value<'j> {
    let mut current = json;
    for step in steps {
        let Some(next) = current.get(step.name.as_str()) else {
            return Value::Undefined;
        };
        current = match step.index {
            Some(i) => match next.get(i) {
                Some(item) => item,
                None => return Value::Undefined,
            },
            None => next,
        };
    }
    match current {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n.as_f64().map_or(Value::Undefined, Value::num),
        Json::String(s) => Value::Str(Cow::Borrowed(s)),
        Json::Array(_) | Json::Object(_) => Value::Undefined,
    }
}

/// Whether `expr` evaluates to boolean `true`.
pub(crate) fn is_true(expr: &Expr, scope: &Scope<'_>) -> bool {
    eval(expr, scope) == Value::Bool(true)
}

/// Evaluates `expr`. Recursion is bounded by the parser's depth limit.
pub(crate) fn eval<'a>(expr: &'a Expr, scope: &'a Scope<'_>) -> Value<'a> {
    match expr {
        Expr::Literal(literal) => match literal {
            Literal::Undefined => Value::Undefined,
            Literal::Null => Value::Null,
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Number(n) => Value::Num(*n),
            Literal::Str(s) => Value::Str(Cow::Borrowed(s)),
        },
        Expr::App(name) => scope.app(name).unwrap_or(Value::Undefined),
        Expr::Sys { raw, lookup, .. } => match lookup {
            Lookup::AppThenSystem => scope.app(raw).unwrap_or_else(|| scope.system(&raw[1..])),
            Lookup::System => scope.system(&raw[1..]),
            Lookup::AppThenBody(steps) => scope.app(raw).unwrap_or_else(|| body(scope, steps)),
            Lookup::Body(steps) => body(scope, steps),
            Lookup::Undefined => Value::Undefined,
        },
        Expr::Call(function, args) => {
            let values: Vec<Value<'a>> = args.iter().map(|a| eval(a, scope)).collect();
            function.apply(&values)
        }
        Expr::TwinChangeIncludes(path) => twin_change_includes(scope, path),
        Expr::Neg(inner) => match eval(inner, scope) {
            Value::Num(n) => Value::Num(-n),
            _ => Value::Undefined,
        },
        Expr::Not(inner) => match eval(inner, scope) {
            Value::Bool(b) => Value::Bool(!b),
            Value::Null => Value::Bool(true),
            _ => Value::Undefined,
        },
        Expr::And(items) => fold(items, scope, and),
        Expr::Or(items) => fold(items, scope, or),
        Expr::Binary(BinOp::Coalesce, left, right) => match eval(left, scope) {
            Value::Undefined => eval(right, scope),
            value => value,
        },
        Expr::Binary(op, left, right) => binary(*op, eval(left, scope), eval(right, scope)),
    }
}

fn body<'a>(scope: &'a Scope<'_>, steps: &[BodyStep]) -> Value<'a> {
    scope
        .queryable_body()
        .map_or(Value::Undefined, |json| body_value(json, steps))
}

/// True when the twin change body has a non-null value at `path` (dot-separated names),
/// false when it has none or null, undefined when the body is not a JSON object.
fn twin_change_includes<'a>(scope: &Scope<'_>, path: &str) -> Value<'a> {
    let Some(json) = scope.json() else {
        return Value::Undefined;
    };
    let found = path
        .split('.')
        .try_fold(json, |node, name| node.get(name))
        .is_some_and(|v| !v.is_null());
    Value::Bool(found)
}

fn fold<'a>(
    items: &'a [Expr],
    scope: &'a Scope<'_>,
    op: fn(Value<'a>, Value<'a>) -> Value<'a>,
) -> Value<'a> {
    let mut values = items.iter().map(|item| eval(item, scope));
    let first = values.next().unwrap_or(Value::Undefined);
    values.fold(first, op)
}

fn and<'a>(a: Value<'a>, b: Value<'a>) -> Value<'a> {
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => Value::Null,
        (Value::Bool(false), _) | (_, Value::Bool(false)) => Value::Bool(false),
        (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
        _ => Value::Undefined,
    }
}

fn or<'a>(a: Value<'a>, b: Value<'a>) -> Value<'a> {
    match (a, b) {
        (Value::Null, Value::Null) => Value::Null,
        (Value::Null, Value::Bool(x)) | (Value::Bool(x), Value::Null) => Value::Bool(x),
        (Value::Bool(true), _) | (_, Value::Bool(true)) => Value::Bool(true),
        (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
        _ => Value::Undefined,
    }
}

fn binary<'a>(op: BinOp, a: Value<'a>, b: Value<'a>) -> Value<'a> {
    match op {
        BinOp::Mul | BinOp::Div | BinOp::Rem | BinOp::Add | BinOp::Sub => {
            let (Value::Num(x), Value::Num(y)) = (a, b) else {
                return Value::Undefined;
            };
            Value::num(match op {
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
                BinOp::Rem => x % y,
                BinOp::Add => x + y,
                _ => x - y,
            })
        }
        BinOp::Concat => match (a, b) {
            (Value::Str(x), Value::Str(y)) => Value::Str(Cow::Owned(format!("{x}{y}"))),
            _ => Value::Undefined,
        },
        _ => compare(op, &a, &b),
    }
}

fn compare<'a>(op: BinOp, left: &Value<'_>, right: &Value<'_>) -> Value<'a> {
    let ordering = match (left, right) {
        (Value::Undefined | Value::NullStr, _) | (_, Value::Undefined | Value::NullStr) => {
            return Value::Undefined;
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Num(x), Value::Num(y)) => match x.partial_cmp(y) {
            Some(ordering) => ordering,
            None => return Value::Undefined,
        },
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        _ => left.rank().cmp(&right.rank()),
    };
    Value::Bool(match op {
        BinOp::Lt => ordering.is_lt(),
        BinOp::Le => ordering.is_le(),
        BinOp::Gt => ordering.is_gt(),
        BinOp::Ge => ordering.is_ge(),
        BinOp::Eq => ordering.is_eq(),
        _ => ordering.is_ne(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_properties_by_name() {
        let mut system = SystemProperties {
            message_id: Some("m".into()),
            connection_module_id: Some("filter".into()),
            ..SystemProperties::default()
        };
        system.other = vec![
            ("$.schema".into(), Some("s1".into())),
            ("$.ctime".into(), Some("t".into())),
            ("$.InputName".into(), Some("in1".into())),
            ("$.enqueuedTime".into(), None),
        ];
        assert_eq!(system_property(&system, "MESSAGEID"), Some(Some("m")));
        assert_eq!(
            system_property(&system, "connectionModuleId"),
            Some(Some("filter"))
        );
        assert_eq!(system_property(&system, "userId"), None);
        assert_eq!(system_property(&system, "messageSchema"), Some(Some("s1")));
        assert_eq!(system_property(&system, "creationTime"), Some(Some("t")));
        assert_eq!(system_property(&system, "inputName"), Some(Some("in1")));
        assert_eq!(system_property(&system, "enqueuedTime"), Some(None));
        assert_eq!(system_property(&system, "connectionAuthMethod"), None);
    }

    #[test]
    fn bodies_in_every_encoding() {
        let text = "\u{feff}{\"t\": \"é😀\"}";
        let utf32: Vec<u8> = text
            .chars()
            .flat_map(|c| u32::from(c).to_le_bytes())
            .collect();
        let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        for (bytes, encoding) in [
            (text.as_bytes().to_vec(), "UTF-8"),
            (utf16, "utf-16"),
            (utf32, "Utf-32"),
        ] {
            let mut msg = Message::new(bytes);
            msg.system.content_type = Some("application/json".into());
            msg.system.content_encoding = Some(encoding.into());
            let scope = Scope::new(&msg);
            let steps = [BodyStep {
                name: "t".into(),
                index: None,
            }];
            assert_eq!(body(&scope, &steps), Value::Str("é😀".into()), "{encoding}");
        }
        assert_eq!(decode(&[0x3d, 0xd8], "utf-16"), "\u{fffd}");
        assert_eq!(decode(&[0xff, 0xff, 0xff, 0xff], "utf-32"), "\u{fffd}");
    }
}

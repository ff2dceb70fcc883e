//! Evaluation of condition expressions against one JSON document (spec §5.5).
//!
//! Semantics, following the Azure hub query language (and the Cosmos DB dialect it comes
//! from):
//! - A path that does not resolve is *undefined*, never an error. Object keys match exactly,
//!   or else ignoring ASCII case (Azure answers `SELECT DeviceId` with `deviceId`).
//! - Comparisons are only between primitive values (null, bool, number, string) of the same
//!   type; anything else (undefined, objects, arrays, mixed types) compares as undefined.
//!   `<`, `<=`, `>`, `>=` apply to numbers and strings (code-point order) only.
//! - Logic is three-valued: `AND` is false if any operand is false, true if all are true,
//!   else undefined; `OR` dually; `NOT` of a non-boolean is undefined. A condition matches
//!   only when it evaluates to boolean `true`, so `NOT (tags.x = 1)` does not match a twin
//!   without `tags.x`.
//! - Arithmetic works on numbers only (as f64); a non-finite result is undefined.
//! - `v IN list` is true when `v` equals an element of the array `list`; `NIN` negates it;
//!   both are undefined when `v` is not a primitive or `list` is not an array.
//! - `IS_DEFINED` and the `IS_*` type checks are always booleans; `STARTSWITH`, `ENDSWITH`
//!   and `CONTAINS` are case-sensitive and undefined unless both arguments are strings.

use std::cmp::Ordering;

use serde_json::Value;

use super::ast::{ArithOp, CompareOp, Expr, Function, Literal, Path};

/// The value of an expression, borrowing from the document or the query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val<'a> {
    Undefined,
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
    /// An object or array from the document.
    Composite(&'a Value),
    /// An array built by an `[...]` expression.
    List(Vec<Val<'a>>),
}

impl<'a> Val<'a> {
    pub(crate) fn from_json(value: &'a Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => n.as_f64().map_or(Self::Undefined, Self::Num),
            Value::String(s) => Self::Str(s),
            Value::Array(_) | Value::Object(_) => Self::Composite(value),
        }
    }

    fn is_primitive(&self) -> bool {
        matches!(
            self,
            Self::Null | Self::Bool(_) | Self::Num(_) | Self::Str(_)
        )
    }
}

/// Resolves `path` in `doc`, returning the key as spelled in the document and its value.
pub(crate) fn lookup<'a>(doc: &'a Value, path: &Path) -> Option<(&'a str, &'a Value)> {
    let mut current = doc;
    let mut key = "";
    for segment in &path.0 {
        let Value::Object(map) = current else {
            return None;
        };
        let (k, v) = map
            .get_key_value(segment.as_str())
            .or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(segment)))?;
        key = k;
        current = v;
    }
    Some((key, current))
}

/// Whether `expr` evaluates to boolean `true` on `doc`.
pub(crate) fn is_true(expr: &Expr, doc: &Value) -> bool {
    eval(expr, doc) == Val::Bool(true)
}

/// Evaluates `expr` on `doc`. Recursion is bounded by the parser's depth limit.
pub(crate) fn eval<'a>(expr: &'a Expr, doc: &'a Value) -> Val<'a> {
    match expr {
        Expr::Literal(literal) => match literal {
            Literal::Undefined => Val::Undefined,
            Literal::Null => Val::Null,
            Literal::Bool(b) => Val::Bool(*b),
            Literal::Number(n) => Val::Num(*n),
            Literal::String(s) => Val::Str(s),
        },
        Expr::Path(path) => lookup(doc, path).map_or(Val::Undefined, |(_, v)| Val::from_json(v)),
        Expr::Array(items) => Val::List(items.iter().map(|e| eval(e, doc)).collect()),
        Expr::Not(inner) => match eval(inner, doc) {
            Val::Bool(b) => Val::Bool(!b),
            _ => Val::Undefined,
        },
        Expr::Neg(inner) => match eval(inner, doc) {
            Val::Num(n) => Val::Num(-n),
            _ => Val::Undefined,
        },
        Expr::And(items) => logical(items, doc, false),
        Expr::Or(items) => logical(items, doc, true),
        Expr::Compare(op, left, right) => compare(*op, &eval(left, doc), &eval(right, doc)),
        Expr::Arith(op, left, right) => arith(*op, &eval(left, doc), &eval(right, doc)),
        Expr::In {
            negated,
            value,
            list,
        } => {
            let value = eval(value, doc);
            if !value.is_primitive() {
                return Val::Undefined;
            }
            let found = match eval(list, doc) {
                Val::List(items) => items.iter().any(|item| equal(&value, item)),
                Val::Composite(Value::Array(items)) => items
                    .iter()
                    .any(|item| equal(&value, &Val::from_json(item))),
                _ => return Val::Undefined,
            };
            Val::Bool(found != *negated)
        }
        Expr::Call(function, args) => call(*function, args, doc),
    }
}

/// `AND` (`short = false`) or `OR` (`short = true`) in three-valued logic: the first
/// operand equal to `short` decides; otherwise all must be the other boolean.
fn logical(items: &[Expr], doc: &Value, short: bool) -> Val<'static> {
    let mut all_bool = true;
    for item in items {
        match eval(item, doc) {
            Val::Bool(b) if b == short => return Val::Bool(short),
            Val::Bool(_) => {}
            _ => all_bool = false,
        }
    }
    if all_bool {
        Val::Bool(!short)
    } else {
        Val::Undefined
    }
}

/// Equality of two primitives of the same type.
#[allow(clippy::float_cmp, reason = "the language compares numbers exactly")]
fn equal(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Num(x), Val::Num(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x == y,
        _ => false,
    }
}

fn compare<'a>(op: CompareOp, a: &Val<'_>, b: &Val<'_>) -> Val<'a> {
    let same_primitive_type =
        std::mem::discriminant(a) == std::mem::discriminant(b) && a.is_primitive();
    if !same_primitive_type {
        return Val::Undefined;
    }
    let ordering = match (a, b) {
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(y),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        _ => None,
    };
    let result = match (op, ordering) {
        (CompareOp::Eq, _) => equal(a, b),
        (CompareOp::Ne, _) => !equal(a, b),
        (_, None) => return Val::Undefined,
        (CompareOp::Lt, Some(o)) => o == Ordering::Less,
        (CompareOp::Le, Some(o)) => o != Ordering::Greater,
        (CompareOp::Gt, Some(o)) => o == Ordering::Greater,
        (CompareOp::Ge, Some(o)) => o != Ordering::Less,
    };
    Val::Bool(result)
}

fn arith<'a>(op: ArithOp, a: &Val<'_>, b: &Val<'_>) -> Val<'a> {
    let (Val::Num(x), Val::Num(y)) = (a, b) else {
        return Val::Undefined;
    };
    let result = match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div => x / y,
        ArithOp::Rem => x % y,
    };
    if result.is_finite() {
        Val::Num(result)
    } else {
        Val::Undefined
    }
}

fn call<'a>(function: Function, args: &'a [Expr], doc: &'a Value) -> Val<'a> {
    let values: Vec<Val<'a>> = args.iter().map(|a| eval(a, doc)).collect();
    let first = values.first().unwrap_or(&Val::Undefined);
    let is_array = |v: &Val<'_>| matches!(v, Val::List(_) | Val::Composite(Value::Array(_)));
    let check = match function {
        Function::IsDefined => *first != Val::Undefined,
        Function::IsNull => *first == Val::Null,
        Function::IsBool => matches!(first, Val::Bool(_)),
        Function::IsNumber => matches!(first, Val::Num(_)),
        Function::IsString => matches!(first, Val::Str(_)),
        Function::IsArray => is_array(first),
        Function::IsObject => matches!(first, Val::Composite(Value::Object(_))),
        Function::IsPrimitive => first.is_primitive(),
        Function::StartsWith | Function::EndsWith | Function::Contains => {
            let (Some(Val::Str(s)), Some(Val::Str(part))) = (values.first(), values.get(1)) else {
                return Val::Undefined;
            };
            match function {
                Function::StartsWith => s.starts_with(part),
                Function::EndsWith => s.ends_with(part),
                _ => s.contains(part),
            }
        }
    };
    Val::Bool(check)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::query::parser::parse_condition;

    fn eval_text(condition: &str, doc: &Value) -> String {
        let condition = parse_condition(condition).unwrap();
        let expr = condition.expr.as_ref().unwrap();
        format!("{:?}", eval(expr, doc))
    }

    #[test]
    fn lookup_prefers_exact_key_then_ignores_case() {
        let doc = json!({"deviceId": "d1", "tags": {"Env": "a", "env": "b", "X": {"y": 1}}});
        let path = |p: &[&str]| Path(p.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(
            lookup(&doc, &path(&["DeviceId"])),
            Some(("deviceId", &json!("d1")))
        );
        assert_eq!(
            lookup(&doc, &path(&["tags", "env"])),
            Some(("env", &json!("b")))
        );
        assert_eq!(
            lookup(&doc, &path(&["tags", "x", "Y"])),
            Some(("y", &json!(1)))
        );
        assert_eq!(lookup(&doc, &path(&["tags", "env", "deeper"])), None);
    }

    #[test]
    fn three_valued_logic() {
        let doc = json!({"a": 1});
        assert_eq!(eval_text("a = 1 AND missing = 1", &doc), "Undefined");
        assert_eq!(eval_text("a = 2 AND missing = 1", &doc), "Bool(false)");
        assert_eq!(eval_text("a = 1 OR missing = 1", &doc), "Bool(true)");
        assert_eq!(eval_text("a = 2 OR missing = 1", &doc), "Undefined");
        assert_eq!(eval_text("NOT missing = 1", &doc), "Undefined");
        assert_eq!(eval_text("NOT 'x'", &doc), "Undefined");
    }

    #[test]
    fn comparisons_need_same_primitive_type() {
        let doc = json!({"n": 5, "s": "5", "o": {"k": 1}, "z": null});
        assert_eq!(eval_text("n = 5.0", &doc), "Bool(true)");
        assert_eq!(eval_text("n = s", &doc), "Undefined");
        assert_eq!(eval_text("o = o", &doc), "Undefined");
        assert_eq!(eval_text("z = null", &doc), "Bool(true)");
        assert_eq!(eval_text("z != null", &doc), "Bool(false)");
        assert_eq!(eval_text("z < null", &doc), "Undefined");
        assert_eq!(eval_text("true < false", &doc), "Undefined");
        assert_eq!(eval_text("s < 'a'", &doc), "Bool(true)");
    }

    #[test]
    fn arithmetic_and_functions() {
        let doc = json!({"n": 7, "s": "abc", "arr": [1, "x"]});
        assert_eq!(eval_text("n % 4 * 2 + -1", &doc), "Num(5.0)");
        assert_eq!(eval_text("n / 0", &doc), "Undefined");
        assert_eq!(eval_text("s + 1", &doc), "Undefined");
        assert_eq!(eval_text("STARTSWITH(s, 'ab')", &doc), "Bool(true)");
        assert_eq!(eval_text("ends_with(s, 'ab')", &doc), "Bool(false)");
        assert_eq!(eval_text("CONTAINS(n, 'ab')", &doc), "Undefined");
        assert_eq!(
            eval_text("IS_ARRAY(arr) AND IS_ARRAY([1]) AND IS_OBJECT(arr)", &doc),
            "Bool(false)"
        );
        assert_eq!(eval_text("IS_PRIMITIVE(missing)", &doc), "Bool(false)");
        assert_eq!(eval_text("'x' IN arr", &doc), "Bool(true)");
        assert_eq!(eval_text("missing NIN [1]", &doc), "Undefined");
    }

    #[test]
    fn deepest_accepted_expression_evaluates() {
        let doc = json!({"x": 1});
        let deepest = format!("{}true", "NOT ".repeat(crate::query::MAX_DEPTH - 1));
        assert_eq!(eval_text(&deepest, &doc), "Bool(false)");
        let nested = format!("{}x{}", "-(".repeat(63), ")".repeat(63));
        assert_eq!(eval_text(&nested, &doc), "Num(-1.0)");
        let too_deep = format!("{}true", "NOT ".repeat(crate::query::MAX_DEPTH));
        assert!(parse_condition(&too_deep).is_err());
    }
}

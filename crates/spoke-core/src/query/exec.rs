//! Execution of a parsed [`Query`] over documents: filter, group, project, `TOP`.
//!
//! Output rules:
//! - `SELECT *` returns the matching documents unchanged, in input order.
//! - A projection row is an object with one property per projection, in projection order:
//!   the alias, else the last path segment as spelled in the document (`SELECT deviceId,
//!   tags.location` gives `{"deviceId": .., "location": ..}`), else `$1`, `$2`, ... for
//!   unnamed aggregates. Undefined values are omitted.
//! - Aggregate queries without `GROUP BY` give exactly one row, even over no documents.
//!   With `GROUP BY`, one row per distinct key tuple in order of first appearance; a key
//!   that is undefined in a document is its own group value (and is omitted from the row).
//!   Numbers in keys compare by value (`1` and `1.0` are one group).
//! - `COUNT()` counts documents. `SUM` and `AVG` use the numeric values only (`SUM` of none
//!   is 0, `AVG` of none is omitted); `SUM` stays an integer while all inputs are integers
//!   and the sum fits i64. `MIN`/`MAX` use primitive values with the order
//!   null < booleans < numbers < strings and return the value unchanged.
//! - `TOP n` keeps the first `n` rows.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::{Map, Number, Value};

use super::ast::{Aggregate, Collection, Path, Projection, Query, SelectItem, SelectList};
use super::eval::lookup;
use super::{ItemType, QueryOutput};

/// Runs `query` over `docs`.
pub(crate) fn execute<'a>(query: &Query, docs: impl IntoIterator<Item = &'a Value>) -> QueryOutput {
    let top = query.top.map_or(usize::MAX, |n| n as usize);
    let matching = docs.into_iter().filter(|doc| query.filter.matches(doc));
    let items = match &query.select {
        SelectList::All => {
            let item_type = match query.from {
                Collection::Jobs => ItemType::DeviceJob,
                Collection::Devices | Collection::Modules => ItemType::Twin,
            };
            return QueryOutput {
                item_type,
                items: matching.take(top).cloned().collect(),
            };
        }
        SelectList::Items(items) => items,
    };
    let names = SelectItem::declared_names(items);
    let aggregated = query.aggregates();
    let rows = if aggregated {
        group(matching, &query.group_by)
            .iter()
            .take(top)
            .map(|docs| row(items, &names, docs))
            .collect()
    } else {
        matching
            .take(top)
            .map(|doc| row(items, &names, &[doc]))
            .collect()
    };
    QueryOutput {
        item_type: ItemType::Raw,
        items: rows,
    }
}

/// Splits documents into groups by the values of `keys`, in order of first appearance.
/// Without keys, all documents form one (possibly empty) group.
fn group<'a>(docs: impl Iterator<Item = &'a Value>, keys: &[Path]) -> Vec<Vec<&'a Value>> {
    if keys.is_empty() {
        return vec![docs.collect()];
    }
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<Vec<&Value>> = Vec::new();
    for doc in docs {
        let mut key = String::new();
        for path in keys {
            write_key(&mut key, lookup(doc, path).map(|(_, v)| v));
        }
        let next = groups.len();
        let slot = *index.entry(key).or_insert(next);
        if slot == next {
            groups.push(Vec::new());
        }
        groups[slot].push(doc);
    }
    groups
}

/// Appends an unambiguous encoding of one key value (length-prefixed where variable).
fn write_key(out: &mut String, value: Option<&Value>) {
    let part = match value {
        None => "u;".to_owned(),
        Some(Value::Null) => "n;".to_owned(),
        Some(Value::Bool(b)) => format!("b{};", u8::from(*b)),
        Some(Value::Number(n)) => {
            // Normalize so that 1 and 1.0, and 0 and -0.0, encode alike.
            let f = n.as_f64().unwrap_or(f64::NAN);
            let f = if f == 0.0 { 0.0 } else { f };
            format!("d{:x};", f.to_bits())
        }
        Some(Value::String(s)) => format!("s{}:{s}", s.len()),
        Some(other) => {
            let text = other.to_string();
            format!("j{}:{text}", text.len())
        }
    };
    out.push_str(&part);
}

/// One output row for a group of documents (a single document for plain projections).
fn row(items: &[SelectItem], names: &[String], docs: &[&Value]) -> Value {
    let mut out = Map::new();
    for (item, name) in items.iter().zip(names) {
        match &item.projection {
            Projection::Path(path) => {
                if let Some((key, value)) = docs.first().and_then(|doc| lookup(doc, path)) {
                    let key = item.alias.as_deref().unwrap_or(key);
                    out.insert(key.to_owned(), value.clone());
                }
            }
            Projection::Aggregate(aggregate) => {
                if let Some(value) = compute(aggregate, docs) {
                    out.insert(name.clone(), value);
                }
            }
        }
    }
    Value::Object(out)
}

fn compute(aggregate: &Aggregate, docs: &[&Value]) -> Option<Value> {
    let values = |path: &Path| -> Vec<&Value> {
        docs.iter()
            .filter_map(|doc| lookup(doc, path).map(|(_, v)| v))
            .collect()
    };
    match aggregate {
        Aggregate::Count => Some(Value::from(docs.len())),
        Aggregate::Sum(path) => Some(sum(&values(path))),
        Aggregate::Avg(path) => {
            let numbers: Vec<f64> = values(path).iter().filter_map(|v| v.as_f64()).collect();
            if numbers.is_empty() {
                return None;
            }
            let mean = numbers.iter().sum::<f64>() / numbers.len() as f64;
            Number::from_f64(mean).map(Value::Number)
        }
        Aggregate::Min(path) => extreme(&values(path), Ordering::Less),
        Aggregate::Max(path) => extreme(&values(path), Ordering::Greater),
    }
}

fn sum(values: &[&Value]) -> Value {
    let mut exact: Option<i128> = Some(0);
    let mut float = 0.0;
    for value in values {
        let Value::Number(n) = value else { continue };
        float += n.as_f64().unwrap_or(0.0);
        exact = match (exact, n.as_i64()) {
            (Some(total), Some(i)) => Some(total + i128::from(i)),
            _ => None,
        };
    }
    match exact.and_then(|total| i64::try_from(total).ok()) {
        Some(total) => Value::from(total),
        None => Number::from_f64(float).map_or(Value::Null, Value::Number),
    }
}

/// The primitive value that is `wanted` (Less: minimum, Greater: maximum) of all others.
fn extreme<'a>(values: &[&'a Value], wanted: Ordering) -> Option<Value> {
    let mut best: Option<&'a Value> = None;
    for &value in values {
        if matches!(value, Value::Array(_) | Value::Object(_)) {
            continue;
        }
        if best.is_none_or(|b| order(value, b) == wanted) {
            best = Some(value);
        }
    }
    best.cloned()
}

/// Total order of primitives: null < booleans < numbers < strings.
fn order(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            _ => 3,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

//! The Azure hub query language over twin documents (spec §5.5) and configuration target
//! conditions (spec §5.6). I/O-free: it works on `serde_json::Value` documents such as the
//! service view of a twin (`{"deviceId", "moduleId"?, "status", "tags", "properties":
//! {"desired", "reported"}, "capabilities", "configurations", ...}`).
//!
//! ```text
//! SELECT <* | [TOP n] projection [AS alias], ...> FROM <devices | devices.modules | devices.jobs>
//!     [WHERE condition] [GROUP BY path, ...]
//! ```
//!
//! - [`Query::parse`] checks everything that can be checked statically, so
//!   [`Query::execute`] over any documents does not fail. A [`QueryError`] carries the
//!   character position and is meant for the hub's 400 response.
//! - [`Condition::parse`] reads a bare target condition (`tags.env = 'prod'`, or `*` for
//!   all); [`TargetCondition::parse`] also accepts the `FROM devices.modules WHERE ...`
//!   form of module configurations.
//! - Evaluation semantics are documented in `eval` (undefined paths, three-valued logic,
//!   same-type primitive comparisons), output shapes in `exec`.
//! - Paging is the caller's job: results come in input order, so an offset is a stable
//!   continuation token over an unchanged input.
//!
//! Layout: `lexer` (tokens) → `parser` (tree, validation) → `ast` (+ `display`, which
//! prints text that parses back to an equal tree) → `eval` (expressions) → `exec` (select).
//! [`fuzzing`] holds the fuzz entry point.

mod ast;
mod display;
mod error;
mod eval;
mod exec;
pub mod fuzzing;
mod lexer;
mod parser;

pub use ast::{Collection, Condition, Query};
pub use error::{QueryError, QueryErrorKind};

use serde_json::Value;

/// Longest accepted query or condition, in characters (Azure's documented limit).
pub const MAX_QUERY_LEN: usize = 8192;

/// Deepest accepted nesting of expressions and parentheses.
pub const MAX_DEPTH: usize = 128;

/// What the items of a query result are; the hub sends it as `x-ms-item-type` (spec §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemType {
    /// Whole device or module twins (`SELECT *` on `devices` or `devices.modules`).
    Twin,
    /// Whole per-device job records (`SELECT *` on `devices.jobs`).
    DeviceJob,
    /// Projection or aggregate rows.
    Raw,
}

impl ItemType {
    /// The `x-ms-item-type` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Twin => "twin",
            Self::DeviceJob => "deviceJob",
            Self::Raw => "raw",
        }
    }
}

/// The result of [`Query::execute`]: all items, in input order; the caller pages them.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    /// What the items are.
    pub item_type: ItemType,
    /// Matching documents or result rows.
    pub items: Vec<Value>,
}

impl Query {
    /// Parses and validates a query.
    pub fn parse(input: &str) -> Result<Self, QueryError> {
        parser::parse_query(input)
    }

    /// The collection the query reads; the caller supplies documents of that kind.
    pub fn from(&self) -> Collection {
        self.from
    }

    /// The `WHERE` clause (matches everything when there is none).
    pub fn condition(&self) -> &Condition {
        &self.filter
    }

    /// Runs the query over `docs`, which must be documents of [`Query::from`]'s collection.
    ///
    /// All checks happen in [`Query::parse`]; the `Result` leaves room for limits that
    /// depend on the data.
    pub fn execute<'a, I>(&self, docs: I) -> Result<QueryOutput, QueryError>
    where
        I: IntoIterator<Item = &'a Value>,
    {
        Ok(exec::execute(self, docs))
    }
}

impl Condition {
    /// Parses a bare condition: a `WHERE` expression, or `*` for "all documents".
    pub fn parse(input: &str) -> Result<Self, QueryError> {
        parser::parse_condition(input)
    }

    /// Whether the condition is `*` (or an absent `WHERE`).
    pub fn is_all(&self) -> bool {
        self.expr.is_none()
    }

    /// Whether `doc` satisfies the condition, i.e. it evaluates to boolean `true`.
    pub fn matches(&self, doc: &Value) -> bool {
        self.expr
            .as_ref()
            .is_none_or(|expr| eval::is_true(expr, doc))
    }
}

/// A configuration's target condition with the collection it applies to (spec §5.6):
/// a bare condition targets device twins; `FROM devices.modules WHERE ...` module twins.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetCondition {
    /// `Devices` or `Modules`.
    pub from: Collection,
    /// The condition on twins of that collection.
    pub condition: Condition,
}

impl TargetCondition {
    /// Parses `cond`, `*`, or `FROM devices[.modules] WHERE cond`.
    pub fn parse(input: &str) -> Result<Self, QueryError> {
        let (from, condition) = parser::parse_target(input)?;
        Ok(Self { from, condition })
    }
}

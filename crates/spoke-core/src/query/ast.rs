//! Syntax tree of the hub query language (spec §5.5).
//!
//! Invariants of trees built by the parser (the only way to build a [`Query`] or
//! [`Condition`] from outside this module):
//! - no expression is nested deeper than [`super::MAX_DEPTH`], so recursive evaluation,
//!   printing and dropping are bounded;
//! - `And`/`Or` are flattened: an `And` never directly holds an `And` (same for `Or`);
//! - a [`Path`] has at least one segment, and on `devices.jobs` every leading `devices.jobs.`
//!   prefix has been removed;
//! - a query satisfies the `SELECT`/`GROUP BY` rules checked by the parser (see
//!   [`super::parser`]).
//!
//! `Display` (in `display.rs`) writes text that parses back to an equal tree.

use std::fmt;

/// The document collection a query reads (`FROM` clause).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collection {
    /// `devices`: device twins.
    Devices,
    /// `devices.modules`: module twins.
    Modules,
    /// `devices.jobs`: per-device job records.
    Jobs,
}

impl Collection {
    /// The collection as written in a `FROM` clause.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Devices => "devices",
            Self::Modules => "devices.modules",
            Self::Jobs => "devices.jobs",
        }
    }
}

impl fmt::Display for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed query: `SELECT ... FROM ... [WHERE ...] [GROUP BY ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub(crate) top: Option<u32>,
    pub(crate) select: SelectList,
    pub(crate) from: Collection,
    pub(crate) filter: Condition,
    pub(crate) group_by: Vec<Path>,
}

impl Query {
    /// Whether the query aggregates (has `GROUP BY` or an aggregate projection), so that
    /// it yields rows per group rather than per document.
    pub(crate) fn aggregates(&self) -> bool {
        !self.group_by.is_empty()
            || matches!(&self.select, SelectList::Items(items)
                if items.iter().any(|i| matches!(i.projection, Projection::Aggregate(_))))
    }
}

/// A filter over twin documents: a `WHERE` clause, or a bare target condition (`*` = all).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// `None` matches every document.
    pub(crate) expr: Option<Expr>,
}

/// The projection list of a `SELECT`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SelectList {
    /// `SELECT *`: whole documents.
    All,
    /// Paths and aggregates, each with an optional alias.
    Items(Vec<SelectItem>),
}

/// One projection with its optional `AS` alias.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SelectItem {
    pub(crate) projection: Projection,
    pub(crate) alias: Option<String>,
}

/// What a projection computes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Projection {
    Path(Path),
    Aggregate(Aggregate),
}

/// An aggregate function of the `SELECT` list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Aggregate {
    Count,
    Avg(Path),
    Sum(Path),
    Min(Path),
    Max(Path),
}

impl Aggregate {
    /// Whether `name` spells an aggregate, ignoring ASCII case.
    pub(crate) fn is_name(name: &str) -> bool {
        ["count", "avg", "sum", "min", "max"]
            .iter()
            .any(|a| a.eq_ignore_ascii_case(name))
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Count => "COUNT",
            Self::Avg(_) => "AVG",
            Self::Sum(_) => "SUM",
            Self::Min(_) => "MIN",
            Self::Max(_) => "MAX",
        }
    }
}

impl SelectItem {
    /// The output property names of `items` as far as they are known before execution:
    /// the alias, else the last path segment as written (execution uses the document's own
    /// spelling of that key), else `$1`, `$2`, ... for unnamed aggregates in order.
    pub(crate) fn declared_names(items: &[SelectItem]) -> Vec<String> {
        let mut unnamed = 0;
        items
            .iter()
            .map(|item| match (&item.alias, &item.projection) {
                (Some(alias), _) => alias.clone(),
                (None, Projection::Path(path)) => path.last().to_owned(),
                (None, Projection::Aggregate(_)) => {
                    unnamed += 1;
                    format!("${unnamed}")
                }
            })
            .collect()
    }
}

/// A dotted property path such as `properties.reported.telemetryConfig.status`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Path(pub(crate) Vec<String>);

impl Path {
    pub(crate) fn last(&self) -> &str {
        self.0.last().map_or("", String::as_str)
    }

    /// Whether both paths name the same property, ignoring ASCII case as lookups do.
    pub(crate) fn same_as(&self, other: &Path) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

/// A constant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Undefined,
    Null,
    Bool(bool),
    /// Always finite and non-negative as parsed (signs are operators).
    Number(f64),
    String(String),
}

/// An expression of a `WHERE` clause or target condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Literal(Literal),
    Path(Path),
    /// `[a, b, ...]`.
    Array(Vec<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    /// Two or more operands, none of them an `And`.
    And(Vec<Expr>),
    /// Two or more operands, none of them an `Or`.
    Or(Vec<Expr>),
    Compare(CompareOp, Box<Expr>, Box<Expr>),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// `value IN list` (`negated`: `NIN`).
    In {
        negated: bool,
        value: Box<Expr>,
        list: Box<Expr>,
    },
    Call(Function, Vec<Expr>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// A built-in function usable in conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Function {
    IsDefined,
    IsNull,
    IsBool,
    IsNumber,
    IsString,
    IsArray,
    IsObject,
    IsPrimitive,
    StartsWith,
    EndsWith,
    Contains,
}

impl Function {
    const ALL: [Self; 11] = [
        Self::IsDefined,
        Self::IsNull,
        Self::IsBool,
        Self::IsNumber,
        Self::IsString,
        Self::IsArray,
        Self::IsObject,
        Self::IsPrimitive,
        Self::StartsWith,
        Self::EndsWith,
        Self::Contains,
    ];

    /// Other accepted spellings: the routing-query names of the same functions.
    const ALIASES: [(&'static str, Self); 2] = [
        ("STARTS_WITH", Self::StartsWith),
        ("ENDS_WITH", Self::EndsWith),
    ];

    /// The function called `name` (ASCII case-insensitive), if any.
    pub(crate) fn lookup(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .map(|f| (f.name(), f))
            .chain(Self::ALIASES)
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, f)| f)
    }

    /// The canonical (upper-case) name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::IsDefined => "IS_DEFINED",
            Self::IsNull => "IS_NULL",
            Self::IsBool => "IS_BOOL",
            Self::IsNumber => "IS_NUMBER",
            Self::IsString => "IS_STRING",
            Self::IsArray => "IS_ARRAY",
            Self::IsObject => "IS_OBJECT",
            Self::IsPrimitive => "IS_PRIMITIVE",
            Self::StartsWith => "STARTSWITH",
            Self::EndsWith => "ENDSWITH",
            Self::Contains => "CONTAINS",
        }
    }

    pub(crate) fn arity(self) -> usize {
        match self {
            Self::StartsWith | Self::EndsWith | Self::Contains => 2,
            _ => 1,
        }
    }
}

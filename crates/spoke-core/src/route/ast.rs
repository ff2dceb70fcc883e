//! Syntax tree of route conditions.
//!
//! Invariants of trees built by the parser (the only way to build one):
//! - no expression is nested deeper than [`super::MAX_DEPTH`], so recursive evaluation,
//!   printing and dropping are bounded;
//! - `And`/`Or` are flattened: an `And` never directly holds an `And` (same for `Or`), and
//!   both hold at least two operands; they evaluate as a left fold, like edgeHub's binary
//!   operators (which are associative);
//! - the tree type-checks (see [`super::types`]), and every [`Lookup`] is the one
//!   [`Lookup::classify`] gives for its property's text, so a printed and re-parsed tree is
//!   equal to the original.
//!
//! `Display` (in `display.rs`) writes text that parses back to an equal tree.

use super::builtins::Builtin;
use super::types::Ty;

/// A constant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Undefined,
    Null,
    Bool(bool),
    /// Never NaN (infinite when the literal overflows, as in .NET).
    Number(f64),
    Str(String),
}

impl Literal {
    pub(crate) fn ty(&self) -> Ty {
        match self {
            Self::Undefined => Ty::Undef,
            Self::Null => Ty::Null,
            Self::Bool(_) => Ty::Bool,
            Self::Number(_) => Ty::Num,
            Self::Str(_) => Ty::Str,
        }
    }
}

/// A binary operator other than `AND` and `OR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Mul,
    Div,
    Rem,
    Add,
    Sub,
    Concat,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    Coalesce,
}

/// Binding strengths: higher binds tighter (edgeHub's grammar lists the operators from the
/// tightest to the loosest, and ANTLR gives earlier alternatives precedence).
pub(crate) const PREC_COALESCE: u8 = 1;
pub(crate) const PREC_OR: u8 = 2;
pub(crate) const PREC_AND: u8 = 3;
pub(crate) const PREC_UNARY: u8 = 8;
pub(crate) const PREC_PRIMARY: u8 = 9;

impl BinOp {
    /// The operator as printed.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Self::Mul => "*",
            Self::Div => "/",
            Self::Rem => "%",
            Self::Add => "+",
            Self::Sub => "-",
            Self::Concat => "||",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Coalesce => "??",
        }
    }

    /// Binding strength (all binary operators are left-associative).
    pub(crate) fn precedence(self) -> u8 {
        match self {
            Self::Mul | Self::Div | Self::Rem => 7,
            Self::Add | Self::Sub | Self::Concat => 6,
            Self::Lt | Self::Le | Self::Gt | Self::Ge => 5,
            Self::Eq | Self::Ne => 4,
            Self::Coalesce => PREC_COALESCE,
        }
    }
}

/// One step of a `$body` query: a property name and an optional array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodyStep {
    pub(crate) name: String,
    /// `usize::MAX` stands for an index too large to exist.
    pub(crate) index: Option<usize>,
}

/// Where a `$` property's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// `$name`: the application property `$name`, else the system property `name`.
    AppThenSystem,
    /// `{$name}`: the system property `name` only.
    System,
    /// `$body.path`: the application property `$body.path`, else the body query.
    AppThenBody(Vec<BodyStep>),
    /// `{$body.path}`, or a `$body` path with an index: the body query only.
    Body(Vec<BodyStep>),
    /// Any other name with `[` or `]`: never defined.
    Undefined,
}

impl Lookup {
    /// How edgeHub resolves the property written `raw` (with its `$`), in braces when
    /// `escaped`, and the property's static type. `Err` holds a malformed `$body` path.
    pub(crate) fn classify(raw: &str, escaped: bool) -> Result<(Self, Ty), String> {
        let brackets = raw.contains(['[', ']']);
        let body = raw
            .get(..6)
            .filter(|prefix| prefix.eq_ignore_ascii_case("$body."))
            .map(|_| &raw[6..]);
        Ok(match body {
            Some(path) => {
                let steps = body_path(path).ok_or_else(|| path.to_owned())?;
                let lookup = if escaped || brackets {
                    Self::Body(steps)
                } else {
                    Self::AppThenBody(steps)
                };
                (lookup, Ty::Dyn)
            }
            None if brackets => (Self::Undefined, Ty::Undef),
            None if escaped => (Self::System, Ty::Str),
            None => (Self::AppThenSystem, Ty::Str),
        })
    }
}

/// Parses the path of a `$body.` query (edgeHub's `JsonPath.g4`): steps `name` or
/// `name[digits]` joined by `.`, names without `[ ] .`.
fn body_path(path: &str) -> Option<Vec<BodyStep>> {
    path.split('.')
        .map(|step| {
            let (name, index) = match step.split_once('[') {
                Some((name, rest)) => {
                    let digits = rest.strip_suffix(']')?;
                    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    (name, Some(digits.parse().unwrap_or(usize::MAX)))
                }
                None => (step, None),
            };
            if name.is_empty() || name.contains(['[', ']']) {
                return None;
            }
            Some(BodyStep {
                name: name.to_owned(),
                index,
            })
        })
        .collect()
}

/// An expression of a `WHERE` condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Literal(Literal),
    /// A bare identifier: the application property of that name.
    App(String),
    /// `$name`, or `{$name}` when `escaped`; `raw` keeps the `$`.
    Sys {
        raw: String,
        escaped: bool,
        lookup: Lookup,
    },
    Call(Builtin, Vec<Expr>),
    /// `twin_change_includes(path)`, on twin change notification routes only.
    TwinChangeIncludes(String),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// Two or more operands, none of them an `And`.
    And(Vec<Expr>),
    /// Two or more operands, none of them an `Or`.
    Or(Vec<Expr>),
}

impl Expr {
    /// Binding strength of the expression's top operator; higher binds tighter.
    pub(crate) fn precedence(&self) -> u8 {
        match self {
            Self::Binary(op, ..) => op.precedence(),
            Self::And(_) => PREC_AND,
            Self::Or(_) => PREC_OR,
            Self::Neg(_) | Self::Not(_) => PREC_UNARY,
            Self::Literal(_)
            | Self::App(_)
            | Self::Sys { .. }
            | Self::Call(..)
            | Self::TwinChangeIncludes(_) => PREC_PRIMARY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, index: Option<usize>) -> BodyStep {
        BodyStep {
            name: name.to_owned(),
            index,
        }
    }

    #[test]
    fn classifies_properties_like_edgehub() {
        let body = vec![step("a", None), step("b", Some(0))];
        assert_eq!(
            Lookup::classify("$connectionDeviceId", false),
            Ok((Lookup::AppThenSystem, Ty::Str))
        );
        assert_eq!(
            Lookup::classify("$contentType", true),
            Ok((Lookup::System, Ty::Str))
        );
        assert_eq!(
            Lookup::classify("$body.temp", false),
            Ok((Lookup::AppThenBody(vec![step("temp", None)]), Ty::Dyn))
        );
        assert_eq!(
            Lookup::classify("$BODY.a.b[0]", false),
            Ok((Lookup::Body(body.clone()), Ty::Dyn))
        );
        assert_eq!(
            Lookup::classify("$body.a.b[0]", true),
            Ok((Lookup::Body(body), Ty::Dyn))
        );
        assert_eq!(
            Lookup::classify("$x[0]", false),
            Ok((Lookup::Undefined, Ty::Undef))
        );
        assert_eq!(
            Lookup::classify("$body", false),
            Ok((Lookup::AppThenSystem, Ty::Str))
        );
        assert_eq!(
            Lookup::classify("$body.a[99999999999999999999999]", false),
            Ok((Lookup::Body(vec![step("a", Some(usize::MAX))]), Ty::Dyn))
        );
    }

    #[test]
    fn rejects_malformed_body_paths() {
        for bad in [
            "$body.",
            "$body.a.",
            "$body..a",
            "$body.a[]",
            "$body.a[x]",
            "$body.[0]",
            "$body.a[0][1]",
            "$body.a[0]b",
            "$body.a]",
        ] {
            assert!(Lookup::classify(bad, false).is_err(), "{bad}");
        }
    }
}

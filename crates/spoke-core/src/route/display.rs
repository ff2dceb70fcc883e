//! Canonical text of routes.
//!
//! Invariant (checked by the fuzz target): for every route the parser builds, parsing its
//! `Display` output gives back an equal route. Keywords are written in upper case, functions
//! in lower case, strings in single quotes, binary operators with a space on each side and
//! unary ones followed by one (`- 5` is a negation, `-5` a literal), parentheses only where
//! precedence needs them, and no text holds `*/` (see `Source`'s `Display` and
//! [`crate::literal::write_quoted`]), so a `FROM /*` never opens a comment.

use std::fmt::{self, Display, Formatter, Write as _};

use super::Route;
use super::ast::{Expr, Literal, PREC_AND, PREC_UNARY};
use super::builtins::TWIN_CHANGE_INCLUDES;
use crate::literal::{write_number, write_quoted};

impl Display for Route {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "FROM {}", self.source)?;
        if let Some(condition) = &self.condition {
            write!(f, " WHERE {condition}")?;
        }
        write!(f, " INTO {}", self.sink)
    }
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::Undefined => f.write_str("undefined"),
            Self::Null => f.write_str("null"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Number(n) => write_number(f, *n),
            Self::Str(s) => write_quoted(f, s, '\'', true),
        }
    }
}

/// Writes `child`, in parentheses when its precedence is below `min`.
fn operand(f: &mut Formatter<'_>, child: &Expr, min: u8) -> fmt::Result {
    if child.precedence() < min {
        write!(f, "({child})")
    } else {
        child.fmt(f)
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let prec = self.precedence();
        match self {
            Self::Literal(literal) => literal.fmt(f),
            Self::App(name) => f.write_str(name),
            Self::Sys { raw, escaped, .. } if *escaped => write!(f, "{{{raw}}}"),
            Self::Sys { raw, .. } => f.write_str(raw),
            Self::Call(function, args) => {
                write!(f, "{}(", function.name())?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    arg.fmt(f)?;
                }
                f.write_char(')')
            }
            Self::TwinChangeIncludes(path) => write!(f, "{TWIN_CHANGE_INCLUDES}({path})"),
            Self::Neg(inner) => {
                f.write_str("- ")?;
                operand(f, inner, PREC_UNARY)
            }
            Self::Not(inner) => {
                f.write_str("NOT ")?;
                operand(f, inner, PREC_UNARY)
            }
            Self::Binary(op, left, right) => {
                operand(f, left, prec)?;
                write!(f, " {} ", op.symbol())?;
                operand(f, right, prec + 1)
            }
            Self::And(items) | Self::Or(items) => {
                let keyword = if prec == PREC_AND { " AND " } else { " OR " };
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(keyword)?;
                    }
                    operand(f, item, prec + 1)?;
                }
                Ok(())
            }
        }
    }
}

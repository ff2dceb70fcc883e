//! Canonical text of queries and conditions.
//!
//! Invariant (checked by the fuzz target): for every tree the parser builds, parsing its
//! `Display` output gives back an equal tree, provided the text still fits
//! [`super::MAX_QUERY_LEN`] (printing normalizes spacing and may be longer than the input).
//! Keywords and functions are written in upper case, strings in single quotes, paths with
//! `[[...]]` only where a segment is not a plain name, and parentheses only where
//! precedence needs them.

use std::fmt::{self, Display, Formatter, Write as _};

use super::TargetCondition;
use super::ast::{
    Aggregate, ArithOp, Collection, CompareOp, Condition, Expr, Literal, Path, Projection, Query,
    SelectItem, SelectList,
};
use super::lexer::{Keyword, is_ident_char, is_ident_start};
use crate::literal::{write_number, write_quoted};

impl Display for Query {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("SELECT ")?;
        if let Some(top) = self.top {
            write!(f, "TOP {top} ")?;
        }
        match &self.select {
            SelectList::All => f.write_str("*")?,
            SelectList::Items(items) => write_list(f, items)?,
        }
        write!(f, " FROM {}", self.from)?;
        if let Some(expr) = &self.filter.expr {
            write!(f, " WHERE {expr}")?;
        }
        if !self.group_by.is_empty() {
            f.write_str(" GROUP BY ")?;
            write_list(f, &self.group_by)?;
        }
        Ok(())
    }
}

impl Display for Condition {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.expr {
            Some(expr) => expr.fmt(f),
            None => f.write_str("*"),
        }
    }
}

impl Display for TargetCondition {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.from {
            Collection::Devices => self.condition.fmt(f),
            from => write!(f, "FROM {from} WHERE {}", self.condition),
        }
    }
}

impl Display for SelectItem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.projection {
            Projection::Path(path) => path.fmt(f)?,
            Projection::Aggregate(Aggregate::Count) => f.write_str("COUNT()")?,
            Projection::Aggregate(
                agg @ (Aggregate::Avg(p)
                | Aggregate::Sum(p)
                | Aggregate::Min(p)
                | Aggregate::Max(p)),
            ) => write!(f, "{}({p})", agg.name())?,
        }
        if let Some(alias) = &self.alias {
            write!(f, " AS {alias}")?;
        }
        Ok(())
    }
}

impl Display for Path {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_char('.')?;
            }
            let plain = !segment.is_empty()
                && segment.chars().all(is_ident_char)
                && (i > 0
                    || (segment.starts_with(is_ident_start) && Keyword::lookup(segment).is_none()));
            if plain {
                f.write_str(segment)?;
            } else {
                write!(f, "[[{segment}]]")?;
            }
        }
        Ok(())
    }
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::Undefined => f.write_str("undefined"),
            Self::Null => f.write_str("null"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Number(n) => write_number(f, *n),
            Self::String(s) => write_quoted(f, s, '\'', false),
        }
    }
}

/// Binding strength of an expression's top operator; higher binds tighter.
fn precedence(expr: &Expr) -> u8 {
    match expr {
        Expr::Or(_) => 1,
        Expr::And(_) => 2,
        Expr::Not(_) => 3,
        Expr::Compare(..) | Expr::In { .. } => 4,
        Expr::Arith(ArithOp::Add | ArithOp::Sub, ..) => 5,
        Expr::Arith(..) => 6,
        Expr::Neg(_) => 7,
        Expr::Literal(_) | Expr::Path(_) | Expr::Array(_) | Expr::Call(..) => 8,
    }
}

/// Writes `child`, in parentheses when its precedence is below `min`.
fn operand(f: &mut Formatter<'_>, child: &Expr, min: u8) -> fmt::Result {
    if precedence(child) < min {
        write!(f, "({child})")
    } else {
        child.fmt(f)
    }
}

/// Writes a left-associative binary operation at precedence `prec`.
fn binary(f: &mut Formatter<'_>, left: &Expr, op: &str, right: &Expr, prec: u8) -> fmt::Result {
    operand(f, left, prec)?;
    write!(f, " {op} ")?;
    operand(f, right, prec + 1)
}

fn write_list<T: Display>(f: &mut Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        item.fmt(f)?;
    }
    Ok(())
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let prec = precedence(self);
        match self {
            Self::Literal(literal) => literal.fmt(f),
            Self::Path(path) => path.fmt(f),
            Self::Array(items) => {
                let mut body = String::new();
                for (i, item) in items.iter().enumerate() {
                    let sep = if i > 0 { ", " } else { "" };
                    write!(body, "{sep}{item}")?;
                }
                // `[[` would open a path segment.
                let pad = if body.starts_with('[') { " " } else { "" };
                write!(f, "[{pad}{body}]")
            }
            Self::Not(inner) => {
                f.write_str("NOT ")?;
                operand(f, inner, prec)
            }
            Self::Neg(inner) => {
                f.write_char('-')?;
                operand(f, inner, prec)
            }
            Self::And(items) | Self::Or(items) => {
                let op = if prec == 1 { " OR " } else { " AND " };
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(op)?;
                    }
                    operand(f, item, prec + 1)?;
                }
                Ok(())
            }
            Self::Compare(op, left, right) => {
                let op = match op {
                    CompareOp::Eq => "=",
                    CompareOp::Ne => "!=",
                    CompareOp::Lt => "<",
                    CompareOp::Le => "<=",
                    CompareOp::Gt => ">",
                    CompareOp::Ge => ">=",
                };
                binary(f, left, op, right, prec)
            }
            Self::In {
                negated,
                value,
                list,
            } => binary(f, value, if *negated { "NIN" } else { "IN" }, list, prec),
            Self::Arith(op, left, right) => {
                let op = match op {
                    ArithOp::Add => "+",
                    ArithOp::Sub => "-",
                    ArithOp::Mul => "*",
                    ArithOp::Div => "/",
                    ArithOp::Rem => "%",
                };
                binary(f, left, op, right, prec)
            }
            Self::Call(function, args) => {
                write!(f, "{}(", function.name())?;
                write_list(f, args)?;
                f.write_char(')')
            }
        }
    }
}

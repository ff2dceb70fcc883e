//! Static types of route conditions, checked when a route compiles.
//!
//! edgeHub compiles a condition into a typed .NET expression tree (`ConditionVisitor`), so
//! type mismatches are compile errors, not runtime `undefined`. The types:
//! - `string`: string literals, application properties (`temp`), system properties
//!   (`$messageId`, `{$contentType}`) and string functions;
//! - `number`, `bool`, `null`, `undefined`: literals and function results of that type;
//! - `dynamic`: `$body` queries, whose type is only known per message.
//!
//! The rules (edgeHub's `Args.Match` with query values allowed):
//! - two operands *agree* when their types are equal, or one is `dynamic` and the other is
//!   `string`, `number`, `bool` or `null`;
//! - comparisons (`< <= > >= = != <>`) and `??` need agreeing operands; so `temp > 30` with
//!   `temp` an application property (a string) is an error, and
//!   `as_number(temp) > 30` is the way to write it;
//! - arithmetic (`* / % + -`, unary `-`) takes `number` or `dynamic`; `||` takes `string` or
//!   `dynamic`; `NOT` takes `bool`, `null` or `dynamic`; `AND` and `OR` take `bool`, `null`,
//!   `undefined` or `dynamic`;
//! - functions have the signatures in [`super::builtins`].

use std::fmt;

use super::ast::BinOp;
use super::error::RouteErrorKind as K;

/// The static type of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Str,
    Num,
    Bool,
    Null,
    Undef,
    Dyn,
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Str => "string",
            Self::Num => "number",
            Self::Bool => "bool",
            Self::Null => "null",
            Self::Undef => "undefined",
            Self::Dyn => "dynamic",
        })
    }
}

impl Ty {
    /// Whether a value of type `self` may stand where `expected` is required: the same type,
    /// or a `$body` query where a string, number, bool or null is required.
    pub(crate) fn fits(self, expected: Ty) -> bool {
        self == expected
            || (self == Ty::Dyn && matches!(expected, Ty::Str | Ty::Num | Ty::Bool | Ty::Null))
    }

    /// Whether two operands agree (see the module docs).
    fn agrees(self, other: Ty) -> bool {
        other.fits(self) || self.fits(other)
    }

    /// The type of a value converted to agree with `other`.
    fn joined(self, other: Ty) -> Ty {
        if self == other { self } else { Ty::Dyn }
    }
}

fn operands(op: &'static str, left: Ty, right: Ty) -> K {
    K::Operands {
        arity: "binary ",
        op,
        have: format!("'{left}' and '{right}'"),
    }
}

/// The result type of `left op right`, or the error.
pub(crate) fn binary(op: BinOp, left: Ty, right: Ty) -> Result<Ty, K> {
    let ok = match op {
        BinOp::Mul | BinOp::Div | BinOp::Rem | BinOp::Add | BinOp::Sub => {
            left.fits(Ty::Num) && right.fits(Ty::Num)
        }
        BinOp::Concat => left.fits(Ty::Str) && right.fits(Ty::Str),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne | BinOp::Coalesce => {
            left.agrees(right)
        }
    };
    if !ok {
        return Err(operands(op.symbol(), left, right));
    }
    Ok(match op {
        BinOp::Concat => Ty::Str,
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne => Ty::Bool,
        _ => left.joined(right),
    })
}

/// The result type of `left AND right` (`and`) or `left OR right`, or the error. A `null`
/// operand makes `AND` null; `OR` is null only when both are.
pub(crate) fn logical(and: bool, left: Ty, right: Ty) -> Result<Ty, K> {
    let boolish = |t: Ty| matches!(t, Ty::Bool | Ty::Null | Ty::Undef | Ty::Dyn);
    if !boolish(left) || !boolish(right) {
        return Err(operands(if and { "AND" } else { "OR" }, left, right));
    }
    let null = if and {
        left == Ty::Null || right == Ty::Null
    } else {
        left == Ty::Null && right == Ty::Null
    };
    Ok(if null { Ty::Null } else { Ty::Bool })
}

/// The result type of `-operand` (`negate`) or `NOT operand`, or the error.
pub(crate) fn unary(negate: bool, operand: Ty) -> Result<Ty, K> {
    let (ok, op, result) = if negate {
        (operand.fits(Ty::Num), "-", Ty::Num)
    } else {
        (
            matches!(operand, Ty::Bool | Ty::Null | Ty::Dyn),
            "NOT",
            Ty::Bool,
        )
    };
    if ok {
        Ok(result)
    } else {
        Err(K::Operands {
            arity: "unary ",
            op,
            have: format!("'{operand}'"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_need_agreeing_types() {
        assert_eq!(binary(BinOp::Gt, Ty::Num, Ty::Num), Ok(Ty::Bool));
        assert_eq!(binary(BinOp::Eq, Ty::Dyn, Ty::Str), Ok(Ty::Bool));
        assert_eq!(binary(BinOp::Eq, Ty::Null, Ty::Dyn), Ok(Ty::Bool));
        assert_eq!(binary(BinOp::Eq, Ty::Undef, Ty::Undef), Ok(Ty::Bool));
        for (l, r) in [
            (Ty::Str, Ty::Num),
            (Ty::Str, Ty::Null),
            (Ty::Num, Ty::Undef),
            (Ty::Dyn, Ty::Undef),
            (Ty::Bool, Ty::Str),
        ] {
            assert!(binary(BinOp::Lt, l, r).is_err(), "{l} < {r}");
        }
        assert_eq!(
            binary(BinOp::Gt, Ty::Str, Ty::Num).unwrap_err().to_string(),
            "invalid operands to binary operator '>': have 'string' and 'number'"
        );
    }

    #[test]
    fn arithmetic_concat_and_coalesce() {
        assert_eq!(binary(BinOp::Add, Ty::Num, Ty::Num), Ok(Ty::Num));
        assert_eq!(binary(BinOp::Rem, Ty::Dyn, Ty::Num), Ok(Ty::Dyn));
        assert!(binary(BinOp::Add, Ty::Str, Ty::Num).is_err());
        assert!(binary(BinOp::Mul, Ty::Null, Ty::Num).is_err());
        assert_eq!(binary(BinOp::Concat, Ty::Str, Ty::Dyn), Ok(Ty::Str));
        assert!(binary(BinOp::Concat, Ty::Str, Ty::Num).is_err());
        assert_eq!(binary(BinOp::Coalesce, Ty::Str, Ty::Str), Ok(Ty::Str));
        assert_eq!(binary(BinOp::Coalesce, Ty::Dyn, Ty::Num), Ok(Ty::Dyn));
        assert!(binary(BinOp::Coalesce, Ty::Str, Ty::Num).is_err());
    }

    #[test]
    fn logic_and_unary() {
        assert_eq!(logical(true, Ty::Bool, Ty::Undef), Ok(Ty::Bool));
        assert_eq!(logical(true, Ty::Null, Ty::Bool), Ok(Ty::Null));
        assert_eq!(logical(false, Ty::Null, Ty::Bool), Ok(Ty::Bool));
        assert_eq!(logical(false, Ty::Null, Ty::Null), Ok(Ty::Null));
        assert!(logical(false, Ty::Str, Ty::Bool).is_err());
        assert_eq!(unary(true, Ty::Dyn), Ok(Ty::Num));
        assert!(unary(true, Ty::Str).is_err());
        assert_eq!(unary(false, Ty::Null), Ok(Ty::Bool));
        assert_eq!(
            unary(false, Ty::Undef).unwrap_err().to_string(),
            "invalid operands to unary operator 'NOT': have 'undefined'"
        );
    }
}

//! The built-in functions of route conditions (spec §4.1; edgeHub's `query/builtins`), their
//! static signatures and what they compute.
//!
//! Names are case-insensitive. Signatures (`dynamic` `$body` values fit any of `string`,
//! `number`, `bool`; see [`super::types`]):
//!
//! | function | arguments | result |
//! |---|---|---|
//! | `abs exp square ceiling floor sign sqrt` | number | number |
//! | `power` | number, number | number |
//! | `as_number` | string or number | number |
//! | `is_bool is_defined is_null is_number is_string` | anything | bool |
//! | `concat` | two or more strings | string |
//! | `length` | string | number |
//! | `lower upper` | string | string |
//! | `substring` | string, number [, number] | string |
//! | `index_of` | string, string | number |
//! | `starts_with ends_with contains` | string, string | bool |
//! | `twin_change_includes` | a twin path (see the module docs of [`super`]) | bool |
//!
//! At run time a function whose arguments have the wrong kind of value (an undefined
//! property, a `$body` value of another type) returns `undefined`; the `is_*` checks always
//! return a bool. Strings are indexed and measured in characters. `as_number` reads an
//! optionally signed decimal number with optional fraction and exponent, surrounded by
//! optional whitespace (a subset of .NET's `NumberStyles.Any`: no thousands separators,
//! currency symbols or parentheses). A result that is not a number (`sqrt(-1)`) is
//! `undefined`; infinities stay numbers, as in .NET.

use std::borrow::Cow;

use super::eval::Value;
use super::types::Ty;

/// The name of the twin-path function, which the parser handles itself.
pub(crate) const TWIN_CHANGE_INCLUDES: &str = "twin_change_includes";

/// A built-in function other than `twin_change_includes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    Abs,
    Exp,
    Power,
    Square,
    Ceiling,
    Floor,
    Sign,
    Sqrt,
    AsNumber,
    IsBool,
    IsDefined,
    IsNull,
    IsNumber,
    IsString,
    Concat,
    Length,
    Lower,
    Upper,
    Substring,
    IndexOf,
    StartsWith,
    EndsWith,
    Contains,
}

impl Builtin {
    const ALL: [Self; 23] = [
        Self::Abs,
        Self::Exp,
        Self::Power,
        Self::Square,
        Self::Ceiling,
        Self::Floor,
        Self::Sign,
        Self::Sqrt,
        Self::AsNumber,
        Self::IsBool,
        Self::IsDefined,
        Self::IsNull,
        Self::IsNumber,
        Self::IsString,
        Self::Concat,
        Self::Length,
        Self::Lower,
        Self::Upper,
        Self::Substring,
        Self::IndexOf,
        Self::StartsWith,
        Self::EndsWith,
        Self::Contains,
    ];

    /// The function called `name`, ignoring ASCII case.
    pub(crate) fn lookup(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The canonical (lower-case) name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Abs => "abs",
            Self::Exp => "exp",
            Self::Power => "power",
            Self::Square => "square",
            Self::Ceiling => "ceiling",
            Self::Floor => "floor",
            Self::Sign => "sign",
            Self::Sqrt => "sqrt",
            Self::AsNumber => "as_number",
            Self::IsBool => "is_bool",
            Self::IsDefined => "is_defined",
            Self::IsNull => "is_null",
            Self::IsNumber => "is_number",
            Self::IsString => "is_string",
            Self::Concat => "concat",
            Self::Length => "length",
            Self::Lower => "lower",
            Self::Upper => "upper",
            Self::Substring => "substring",
            Self::IndexOf => "index_of",
            Self::StartsWith => "starts_with",
            Self::EndsWith => "ends_with",
            Self::Contains => "contains",
        }
    }

    /// The result type for arguments of types `args`, or `None` when they do not fit.
    pub(crate) fn result(self, args: &[Ty]) -> Option<Ty> {
        let all = |expected: &[Ty]| {
            args.len() == expected.len() && args.iter().zip(expected).all(|(a, &e)| a.fits(e))
        };
        let (ok, result) = match self {
            Self::Abs
            | Self::Exp
            | Self::Square
            | Self::Ceiling
            | Self::Floor
            | Self::Sign
            | Self::Sqrt => (all(&[Ty::Num]), Ty::Num),
            Self::Power => (all(&[Ty::Num, Ty::Num]), Ty::Num),
            Self::AsNumber => (all(&[Ty::Str]) || all(&[Ty::Num]), Ty::Num),
            Self::IsBool | Self::IsDefined | Self::IsNull | Self::IsNumber | Self::IsString => {
                (args.len() == 1, Ty::Bool)
            }
            Self::Concat => (
                args.len() >= 2 && args.iter().all(|a| a.fits(Ty::Str)),
                Ty::Str,
            ),
            Self::Length => (all(&[Ty::Str]), Ty::Num),
            Self::Lower | Self::Upper => (all(&[Ty::Str]), Ty::Str),
            Self::Substring => (
                all(&[Ty::Str, Ty::Num]) || all(&[Ty::Str, Ty::Num, Ty::Num]),
                Ty::Str,
            ),
            Self::IndexOf => (all(&[Ty::Str, Ty::Str]), Ty::Num),
            Self::StartsWith | Self::EndsWith | Self::Contains => {
                (all(&[Ty::Str, Ty::Str]), Ty::Bool)
            }
        };
        ok.then_some(result)
    }

    /// Applies the function to argument values that passed [`Builtin::result`].
    pub(crate) fn apply<'a>(self, args: &[Value<'a>]) -> Value<'a> {
        let first = args.first().unwrap_or(&Value::Undefined);
        match self {
            Self::IsBool => Value::Bool(matches!(first, Value::Bool(_))),
            Self::IsDefined => Value::Bool(*first != Value::Undefined),
            Self::IsNull => Value::Bool(matches!(first, Value::Null | Value::NullStr)),
            Self::IsNumber => Value::Bool(matches!(first, Value::Num(n) if n.is_finite())),
            Self::IsString => Value::Bool(matches!(first, Value::Str(_))),
            Self::AsNumber => match first {
                Value::Num(n) => Value::Num(*n),
                Value::Str(s) => parse_number(s).map_or(Value::Undefined, Value::Num),
                _ => Value::Undefined,
            },
            Self::Concat => {
                let mut out = String::new();
                for arg in args {
                    let Value::Str(s) = arg else {
                        return Value::Undefined;
                    };
                    out.push_str(s);
                }
                Value::Str(Cow::Owned(out))
            }
            _ => self.apply_typed(args),
        }
    }

    /// The functions that need arguments of one exact kind.
    fn apply_typed<'a>(self, args: &[Value<'a>]) -> Value<'a> {
        let (n, s) = (number_args(args), string_args(args));
        match (self, n.as_slice(), s.as_slice()) {
            (Self::Abs, [x], _) => Value::num(x.abs()),
            (Self::Exp, [x], _) => Value::num(x.exp()),
            (Self::Square, [x], _) => Value::num(x * x),
            (Self::Ceiling, [x], _) => Value::num(x.ceil()),
            (Self::Floor, [x], _) => Value::num(x.floor()),
            (Self::Sign, [x], _) => Value::num(if *x == 0.0 { 0.0 } else { x.signum() }),
            (Self::Sqrt, [x], _) => Value::num(x.sqrt()),
            (Self::Power, [x, y], _) => Value::num(x.powf(*y)),
            (Self::Length, _, [s]) => Value::Num(s.chars().count() as f64),
            (Self::Lower, _, [s]) => Value::Str(Cow::Owned(s.to_lowercase())),
            (Self::Upper, _, [s]) => Value::Str(Cow::Owned(s.to_uppercase())),
            (Self::IndexOf, _, [s, part]) => Value::Num(
                s.find(part)
                    .map_or(-1.0, |byte| s[..byte].chars().count() as f64),
            ),
            (Self::StartsWith, _, [s, part]) => Value::Bool(s.starts_with(part)),
            (Self::EndsWith, _, [s, part]) => Value::Bool(s.ends_with(part)),
            (Self::Contains, _, [s, part]) => Value::Bool(s.contains(part)),
            (Self::Substring, _, _) => substring(args),
            _ => Value::Undefined,
        }
    }
}

/// The arguments as numbers, if all are numbers.
fn number_args(args: &[Value<'_>]) -> Vec<f64> {
    args.iter()
        .map_while(|a| match a {
            Value::Num(n) => Some(*n),
            _ => None,
        })
        .collect()
}

/// The arguments as strings, if all are strings.
fn string_args<'s>(args: &'s [Value<'_>]) -> Vec<&'s str> {
    args.iter()
        .map_while(|a| match a {
            Value::Str(s) => Some(s.as_ref()),
            _ => None,
        })
        .collect()
}

/// `substring(s, start)` and `substring(s, start, length)` with edgeHub's bounds: `start` in
/// `0..=len` (`0..len` with a length), `length` in `0..=len - start`; fractions truncate.
fn substring<'a>(args: &[Value<'a>]) -> Value<'a> {
    let (Some(Value::Str(s)), Some(Value::Num(start))) = (args.first(), args.get(1)) else {
        return Value::Undefined;
    };
    let len = s.chars().count() as f64;
    let take = match args.get(2) {
        None if (0.0..=len).contains(start) => len,
        Some(Value::Num(count))
            if (0.0..len).contains(start) && (0.0..=len - start).contains(count) =>
        {
            *count
        }
        _ => return Value::Undefined,
    };
    let out = s
        .chars()
        .skip(*start as usize)
        .take(take as usize)
        .collect();
    Value::Str(Cow::Owned(out))
}

/// `as_number`'s reading of a string (see the module docs).
fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
    let plain = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'));
    if !plain || !mantissa.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value<'_> {
        Value::Str(Cow::Borrowed(text))
    }

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(Builtin::lookup("IS_DEFINED"), Some(Builtin::IsDefined));
        assert_eq!(Builtin::lookup("Starts_With"), Some(Builtin::StartsWith));
        assert_eq!(Builtin::lookup("startswith"), None);
        assert_eq!(Builtin::lookup(TWIN_CHANGE_INCLUDES), None);
    }

    #[test]
    fn signatures() {
        assert_eq!(Builtin::Abs.result(&[Ty::Dyn]), Some(Ty::Num));
        assert_eq!(Builtin::Abs.result(&[Ty::Str]), None);
        assert_eq!(Builtin::AsNumber.result(&[Ty::Num]), Some(Ty::Num));
        assert_eq!(Builtin::IsNull.result(&[Ty::Undef]), Some(Ty::Bool));
        assert_eq!(Builtin::IsNull.result(&[]), None);
        assert_eq!(Builtin::Concat.result(&[Ty::Str]), None);
        assert_eq!(
            Builtin::Concat.result(&[Ty::Str, Ty::Dyn, Ty::Str]),
            Some(Ty::Str)
        );
        assert_eq!(
            Builtin::Substring.result(&[Ty::Str, Ty::Num, Ty::Num]),
            Some(Ty::Str)
        );
        assert_eq!(Builtin::Substring.result(&[Ty::Str, Ty::Str]), None);
    }

    #[test]
    fn math() {
        let num = |f: Builtin, args: &[f64]| {
            let args: Vec<Value<'_>> = args.iter().map(|&n| Value::Num(n)).collect();
            f.apply(&args)
        };
        assert_eq!(num(Builtin::Abs, &[-2.5]), Value::Num(2.5));
        assert_eq!(num(Builtin::Sign, &[0.0]), Value::Num(0.0));
        assert_eq!(num(Builtin::Sign, &[-3.0]), Value::Num(-1.0));
        assert_eq!(num(Builtin::Sqrt, &[-1.0]), Value::Undefined);
        assert_eq!(num(Builtin::Power, &[2.0, 10.0]), Value::Num(1024.0));
        assert_eq!(num(Builtin::Square, &[3.0]), Value::Num(9.0));
        assert_eq!(num(Builtin::Ceiling, &[1.2]), Value::Num(2.0));
        assert_eq!(num(Builtin::Floor, &[-1.2]), Value::Num(-2.0));
        assert_eq!(num(Builtin::Exp, &[1000.0]), Value::Num(f64::INFINITY));
        assert_eq!(Builtin::Abs.apply(&[s("1")]), Value::Undefined);
    }

    #[test]
    fn strings() {
        assert_eq!(
            Builtin::Substring.apply(&[s("héllo"), Value::Num(1.0), Value::Num(3.0)]),
            s("éll")
        );
        assert_eq!(
            Builtin::Substring.apply(&[s("abc"), Value::Num(3.0)]),
            s("")
        );
        assert_eq!(
            Builtin::Substring.apply(&[s("abc"), Value::Num(3.0), Value::Num(0.0)]),
            Value::Undefined
        );
        assert_eq!(
            Builtin::Substring.apply(&[s("abc"), Value::Num(1.0), Value::Num(3.0)]),
            Value::Undefined
        );
        assert_eq!(
            Builtin::IndexOf.apply(&[s("héllo"), s("l")]),
            Value::Num(2.0)
        );
        assert_eq!(Builtin::IndexOf.apply(&[s("a"), s("z")]), Value::Num(-1.0));
        assert_eq!(Builtin::Length.apply(&[s("héllo")]), Value::Num(5.0));
        assert_eq!(Builtin::Upper.apply(&[s("aé")]), s("AÉ"));
        assert_eq!(Builtin::Concat.apply(&[s("a"), s("b"), s("c")]), s("abc"));
        assert_eq!(
            Builtin::Concat.apply(&[s("a"), Value::Null]),
            Value::Undefined
        );
    }

    #[test]
    fn as_number_reads_plain_decimals() {
        for (text, n) in [
            (" 12 ", 12.0),
            ("-1.5e3", -1500.0),
            ("+.5", 0.5),
            ("7.", 7.0),
        ] {
            assert_eq!(parse_number(text), Some(n), "{text}");
        }
        for bad in [
            "", "abc", "0x10", "1,000", "inf", "NaN", "e5", "1e", "--1", ".",
        ] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }
}

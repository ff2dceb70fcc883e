//! String and number literals as the two expression languages of this crate (the hub query
//! language in [`crate::query`], the edge route language in [`crate::route`]) read and write
//! them.
//!
//! - [`unicode_escape`] decodes the body of a `\uXXXX` escape, joining a UTF-16 surrogate pair
//!   written as two escapes (`\ud83d\ude00`) into one character.
//! - [`write_quoted`] writes a string literal that both lexers read back to the same string.
//! - [`write_number`] writes an `f64` so that both lexers read back the same value.

use std::fmt::{self, Formatter, Write as _};

/// The value of four hexadecimal digits at `chars[at..]`.
fn hex4(chars: &[char], at: usize) -> Option<u32> {
    let digits = chars.get(at..at + 4)?;
    digits
        .iter()
        .try_fold(0, |value, d| Some(value * 16 + d.to_digit(16)?))
}

/// Decodes a `\u` escape whose four hex digits start at `chars[at]` (just after the `u`).
///
/// A high surrogate must be followed directly by `\u` and a low surrogate; the pair is one
/// character. Returns the character and how many characters were read (4, or 10 for a pair),
/// or `None` for bad hex digits or a lone surrogate.
pub(crate) fn unicode_escape(chars: &[char], at: usize) -> Option<(char, usize)> {
    let high = hex4(chars, at)?;
    if !(0xD800..0xDC00).contains(&high) {
        return char::from_u32(high).map(|c| (c, 4));
    }
    if chars.get(at + 4) != Some(&'\\') || chars.get(at + 5) != Some(&'u') {
        return None;
    }
    let low = hex4(chars, at + 6).filter(|low| (0xDC00..0xE000).contains(low))?;
    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)).map(|c| (c, 10))
}

/// Writes `s` between `quote`s, escaping the quote, `\` and control characters (as `\uXXXX`).
///
/// With `guard_comment`, a `*` directly followed by `/` is written `\u002a`, so that the text
/// never holds `*/`, which would close a `/* ... */` comment of the route language.
pub(crate) fn write_quoted(
    f: &mut Formatter<'_>,
    s: &str,
    quote: char,
    guard_comment: bool,
) -> fmt::Result {
    f.write_char(quote)?;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let closes_comment = guard_comment && c == '*' && chars.peek() == Some(&'/');
        if c == quote || c == '\\' {
            f.write_char('\\')?;
            f.write_char(c)?;
        } else if c.is_control() || closes_comment {
            write!(f, "\\u{:04x}", u32::from(c))?;
        } else {
            f.write_char(c)?;
        }
    }
    f.write_char(quote)
}

/// Writes `n` (never NaN) in a form both lexers read back to the same value.
///
/// Integers print without a fraction; other finite values use Rust's shortest round-trip form,
/// which switches to exponent notation for very large or small magnitudes. Infinities print
/// as `1e999` and `-1e999`, which overflow back to them.
pub(crate) fn write_number(f: &mut Formatter<'_>, n: f64) -> fmt::Result {
    if n.is_infinite() {
        f.write_str(if n > 0.0 { "1e999" } else { "-1e999" })
    } else if n.fract() == 0.0 && n.abs() < 1e15 {
        write!(f, "{}", n as i64)
    } else {
        write!(f, "{n:?}")
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Display;

    use super::*;

    struct Quoted<'a>(&'a str, char, bool);

    impl Display for Quoted<'_> {
        fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
            write_quoted(f, self.0, self.1, self.2)
        }
    }

    struct Number(f64);

    impl Display for Number {
        fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
            write_number(f, self.0)
        }
    }

    fn escape(text: &str) -> Option<(char, usize)> {
        let chars: Vec<char> = text.chars().collect();
        unicode_escape(&chars, 0)
    }

    #[test]
    fn unicode_escapes_and_surrogate_pairs() {
        assert_eq!(escape("00e9"), Some(('é', 4)));
        assert_eq!(escape("00E9rest"), Some(('é', 4)));
        assert_eq!(escape("d83d\\ude00"), Some(('😀', 10)));
        for bad in ["12", "zzzz", "d83d", "d83d\\u0041", "dc00", "d83dx\\ude00"] {
            assert_eq!(escape(bad), None, "{bad}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(
            Quoted("it's a\\b\n", '\'', false).to_string(),
            r"'it\'s a\\b\u000a'"
        );
        assert_eq!(
            Quoted("say \"x\"", '"', false).to_string(),
            r#""say \"x\"""#
        );
        assert_eq!(Quoted("a*/b*", '\'', true).to_string(), r"'a\u002a/b*'");
        assert_eq!(Quoted("a*/b", '\'', false).to_string(), "'a*/b'");
    }

    #[test]
    #[allow(clippy::float_cmp, reason = "the printed form must read back exactly")]
    fn numbers() {
        let cases = [
            (5.0, "5"),
            (-0.0, "0"),
            (1.5, "1.5"),
            (1e300, "1e300"),
            (1e-7, "1e-7"),
            (-2.5, "-2.5"),
            (f64::INFINITY, "1e999"),
            (f64::NEG_INFINITY, "-1e999"),
        ];
        for (n, text) in cases {
            assert_eq!(Number(n).to_string(), text);
            let back: f64 = text.parse().unwrap();
            assert!(back == n, "{text}");
        }
    }
}

//! Percent-encoding with the exact semantics of Python's `urllib.parse`, which is what the
//! Azure device and service SDKs use for SAS tokens, property bags and topic parameters
//! (spec §2.1, §3.5, §3.6).
//!
//! Invariants:
//! - [`quote`] keeps only `A-Z a-z 0-9 _ . - ~` (Python `quote(s, safe="")`), encoding
//!   everything else, non-ASCII as UTF-8 bytes, with uppercase hex digits.
//! - [`unquote`] decodes `%XX` escapes only: a malformed escape stays literal and `+` stays
//!   `+` (Python `unquote`, never `unquote_plus`). It fails only when the decoded bytes are not
//!   UTF-8, where Python would silently substitute U+FFFD.

use std::borrow::Cow;
use std::str::Utf8Error;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Everything except Python's always-safe characters: `quote(s, safe="")`.
const SAFE_NONE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// Python's `quote(s)` with its default `safe="/"`.
const SAFE_SLASH: &AsciiSet = &SAFE_NONE.remove(b'/');

/// Python `urllib.parse.quote(s, safe="")`.
pub(crate) fn quote(s: &str) -> Cow<'_, str> {
    utf8_percent_encode(s, SAFE_NONE).into()
}

/// Python `urllib.parse.quote(s)` (keeps `/`).
pub(crate) fn quote_keep_slash(s: &str) -> Cow<'_, str> {
    utf8_percent_encode(s, SAFE_SLASH).into()
}

/// Python `urllib.parse.quote_plus(s)`: like [`quote`] but a space becomes `+`.
pub(crate) fn quote_plus(s: &str) -> String {
    s.split(' ')
        .map(|part| quote(part).into_owned())
        .collect::<Vec<_>>()
        .join("+")
}

/// Python `urllib.parse.unquote(s)`, strict about UTF-8.
pub(crate) fn unquote(s: &str) -> Result<Cow<'_, str>, Utf8Error> {
    percent_decode_str(s).decode_utf8()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_python() {
        let cases = [
            ("$.mid", "%24.mid"),
            ("application/json", "application%2Fjson"),
            ("prop a", "prop%20a"),
            (
                "2030-01-01T00:00:00+00:00",
                "2030-01-01T00%3A00%3A00%2B00%3A00",
            ),
            ("a-b_c.d~e", "a-b_c.d~e"),
            ("é", "%C3%A9"),
            ("=&%", "%3D%26%25"),
        ];
        for (raw, quoted) in cases {
            assert_eq!(quote(raw), quoted, "{raw}");
            assert_eq!(unquote(quoted).unwrap(), raw, "{quoted}");
        }
    }

    #[test]
    fn quote_variants() {
        assert_eq!(quote_keep_slash("ab/c+d="), "ab/c%2Bd%3D");
        assert_eq!(quote_plus("localhost:8443"), "localhost%3A8443");
        assert_eq!(quote_plus("a b/c"), "a+b%2Fc");
    }

    #[test]
    fn unquote_is_not_unquote_plus_and_keeps_malformed_escapes() {
        assert_eq!(unquote("a+b").unwrap(), "a+b");
        assert_eq!(unquote("%zz%4").unwrap(), "%zz%4");
        assert_eq!(unquote("%2f%2F").unwrap(), "//");
        assert!(unquote("%ff").is_err());
    }
}

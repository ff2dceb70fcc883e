//! Fuzz entry point for the management API's request parsing (routing, `api-version`, and
//! the `tail`, `since` and `follow` log query). `fuzz/` wraps it in a `fuzz_target!`;
//! `tests/management_fuzz_smoke.rs` runs it over the corpus in
//! `fuzz/corpus/management_request/` and over seeded random inputs.

use hyper::{Method, StatusCode};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;

use super::api::{Route, parse_since, parse_tail};

/// Management requests: `METHOD TARGET`, where TARGET is a path with an optional `?query`.
/// Parsing must never panic; a refusal must have a documented status and a message. Further lines
/// are `since` and `tail` values, whose parsed values must round-trip.
pub fn fuzz_management_request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let line = text.lines().next().unwrap_or("");
    let (method, target) = line.split_once(' ').unwrap_or((line, "/"));
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let now = datetime!(2026-05-01 12:00:00 UTC);
    if let Err(err) = Route::parse(&method, path, query, now) {
        assert!(matches!(
            err.status(),
            StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
        ));
        assert!(!err.message().is_empty());
    }
    for value in text.lines().skip(1) {
        if let Ok(since) = parse_since(value, now)
            && let Ok(formatted) = since.format(&Rfc3339)
        {
            assert_eq!(parse_since(&formatted, now), Ok(since), "{value:?}");
        }
        if let Ok(Some(n)) = parse_tail(value) {
            assert_eq!(parse_tail(&n.to_string()), Ok(Some(n)), "{value:?}");
        }
    }
}

//! The sans-I/O core of the management API: routing a request line to a [`Route`], parsing its
//! query (`api-version`, `tail`, `since`, `follow`), and the errors with their HTTP status
//! (azure-iot-edge-contracts.md §1.3).

use std::borrow::Cow;

use hyper::{Method, StatusCode};
use percent_encoding::percent_decode_str;
use spoke_core::ids::ModuleId;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ControlError;
use crate::runtime::{LogOptions, RuntimeError};
use crate::workload::ApiVersion;

/// A management operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /modules`: every module.
    ListModules,
    /// `GET /modules/{m}`: one module.
    GetModule(ModuleId),
    /// `GET /modules/{m}/logs`: its output.
    Logs(ModuleId, LogOptions),
    /// `POST /modules/{m}/restart`.
    Restart(ModuleId),
    /// `GET /status` (Spoke): the daemon's state.
    Status,
}

/// Why a request was refused; [`ApiError::status`] gives the HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No such path.
    #[error("no resource at {0}")]
    NoRoute(String),
    /// The path exists but not with this method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        /// The request method.
        method: Method,
        /// The request path.
        path: String,
    },
    /// The module named in the path is not a valid module name.
    #[error("invalid module name {name:?}")]
    InvalidModule {
        /// The decoded path segment.
        name: String,
    },
    /// A query parameter is malformed.
    #[error("invalid query parameter {param}: {message}")]
    BadQuery {
        /// The parameter.
        param: &'static str,
        /// What is wrong.
        message: String,
    },
    /// `api-version` names a version Azure does not have.
    #[error("unsupported api-version {0:?}")]
    UnsupportedApiVersion(String),
    /// The daemon refused or failed the operation.
    #[error(transparent)]
    Control(#[from] ControlError),
}

impl ApiError {
    /// The HTTP status of the reply.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoRoute(_)
            | Self::InvalidModule { .. }
            | Self::Control(
                ControlError::NotFound { .. }
                | ControlError::Runtime(RuntimeError::NotFound { .. }),
            ) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadQuery { .. } | Self::UnsupportedApiVersion(_) => StatusCode::BAD_REQUEST,
            Self::Control(ControlError::ShuttingDown) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Control(ControlError::Runtime(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `message` of the JSON error body: the error and its causes.
    pub fn message(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }
}

impl Route {
    /// Routes a request. `path` is the raw (percent-encoded) path and `query` the raw query
    /// string; `now` resolves relative `since` values.
    pub fn parse(
        method: &Method,
        path: &str,
        query: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Self, ApiError> {
        let params = Params::parse(query.unwrap_or(""));
        if let Some(version) = params.get("api-version")
            && ApiVersion::parse(&version).is_none()
        {
            return Err(ApiError::UnsupportedApiVersion(version.into_owned()));
        }
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
        let expect = |allowed: &Method| {
            if method == allowed {
                Ok(())
            } else {
                Err(ApiError::MethodNotAllowed {
                    method: method.clone(),
                    path: path.to_owned(),
                })
            }
        };
        match segments.as_slice() {
            ["modules"] => expect(&Method::GET).map(|()| Self::ListModules),
            ["status"] => expect(&Method::GET).map(|()| Self::Status),
            ["modules", name] => {
                let name = module(name)?;
                expect(&Method::GET).map(|()| Self::GetModule(name))
            }
            ["modules", name, "logs"] => {
                let name = module(name)?;
                expect(&Method::GET)?;
                Ok(Self::Logs(name, log_options(&params, now)?))
            }
            ["modules", name, "restart"] => {
                let name = module(name)?;
                expect(&Method::POST).map(|()| Self::Restart(name))
            }
            _ => Err(ApiError::NoRoute(path.to_owned())),
        }
    }
}

/// A percent-decoded path segment as a module name (`%24edgeHub` is `$edgeHub`).
fn module(segment: &str) -> Result<ModuleId, ApiError> {
    let name = percent_decode_str(segment).decode_utf8_lossy();
    ModuleId::parse(&name).map_err(|_| ApiError::InvalidModule {
        name: name.into_owned(),
    })
}

/// The log query of Azure's `GET /modules/{m}/logs` (`follow`, `tail`, `since`).
fn log_options(params: &Params<'_>, now: OffsetDateTime) -> Result<LogOptions, ApiError> {
    let follow = match params.get("follow").as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1" | "") => true,
        Some(other) => {
            return Err(ApiError::BadQuery {
                param: "follow",
                message: format!("{other:?} is not true or false"),
            });
        }
    };
    let tail = match params.get("tail") {
        None => None,
        Some(value) => parse_tail(&value).map_err(|message| ApiError::BadQuery {
            param: "tail",
            message,
        })?,
    };
    let since = match params.get("since") {
        None => None,
        Some(value) => Some(
            parse_since(&value, now).map_err(|message| ApiError::BadQuery {
                param: "since",
                message,
            })?,
        ),
    };
    Ok(LogOptions {
        tail,
        since,
        follow,
    })
}

/// A `tail` value: a line count, or `all` (no limit).
pub fn parse_tail(value: &str) -> Result<Option<usize>, String> {
    if value.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| format!("{value:?} is neither a number of lines nor \"all\""))
}

/// A `since` value, as Azure accepts it: seconds since the Unix epoch, an RFC 3339 time, or a
/// duration back from `now` (`90m`, `1d`, `1h 30m`).
pub fn parse_since(value: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let bad = || format!("{value:?} is not a duration (1d, 90m), an RFC 3339 time or Unix seconds");
    if let Ok(secs) = value.parse::<i64>() {
        return OffsetDateTime::from_unix_timestamp(secs).map_err(|_| bad());
    }
    if let Ok(time) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(time);
    }
    let back = humantime::parse_duration(value).map_err(|_| bad())?;
    time::Duration::try_from(back)
        .ok()
        .and_then(|back| now.checked_sub(back))
        .ok_or_else(bad)
}

/// Query parameters, percent-decoded (`+` is a space); the first of repeated keys wins.
struct Params<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Params<'a> {
    fn parse(query: &'a str) -> Self {
        Self(
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(key), decode(value))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<Cow<'a, str>> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value.clone())
    }
}

fn decode(text: &str) -> Cow<'_, str> {
    if text.contains('+') {
        Cow::Owned(
            percent_decode_str(&text.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned(),
        )
    } else {
        percent_decode_str(text).decode_utf8_lossy()
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-05-01 12:00:00 UTC);

    fn route(method: &Method, target: &str) -> Result<Route, ApiError> {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        Route::parse(method, path, query, NOW)
    }

    fn id(name: &str) -> ModuleId {
        ModuleId::parse(name).expect("module id")
    }

    #[test]
    fn routes() {
        let cases = [
            (Method::GET, "/modules", Route::ListModules),
            (
                Method::GET,
                "/modules/?api-version=2022-08-03",
                Route::ListModules,
            ),
            (Method::GET, "/status", Route::Status),
            (
                Method::GET,
                "/modules/%24edgeHub",
                Route::GetModule(id("$edgeHub")),
            ),
            (
                Method::POST,
                "/modules/filter/restart",
                Route::Restart(id("filter")),
            ),
            (
                Method::GET,
                "/modules/filter/logs?tail=5&follow=true&since=1h",
                Route::Logs(
                    id("filter"),
                    LogOptions {
                        tail: Some(5),
                        since: Some(datetime!(2026-05-01 11:00:00 UTC)),
                        follow: true,
                    },
                ),
            ),
            (
                Method::GET,
                "/modules/filter/logs?tail=all&since=2026-04-30T00%3A00%3A00Z",
                Route::Logs(
                    id("filter"),
                    LogOptions {
                        tail: None,
                        since: Some(datetime!(2026-04-30 00:00:00 UTC)),
                        follow: false,
                    },
                ),
            ),
        ];
        for (method, target, expected) in cases {
            assert_eq!(route(&method, target).expect(target), expected, "{target}");
        }
    }

    #[test]
    fn refusals_carry_their_status() {
        let cases = [
            (Method::GET, "/nothing", StatusCode::NOT_FOUND),
            (Method::GET, "/modules/a/b/c", StatusCode::NOT_FOUND),
            (Method::GET, "/modules/bad%20name", StatusCode::NOT_FOUND),
            (
                Method::GET,
                "/modules/filter/restart",
                StatusCode::METHOD_NOT_ALLOWED,
            ),
            (Method::DELETE, "/modules", StatusCode::METHOD_NOT_ALLOWED),
            (
                Method::GET,
                "/modules?api-version=1999-01-01",
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::GET,
                "/modules/f/logs?tail=-1",
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::GET,
                "/modules/f/logs?follow=maybe",
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::GET,
                "/modules/f/logs?since=yesterday",
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (method, target, status) in cases {
            let err = route(&method, target).expect_err(target);
            assert_eq!(err.status(), status, "{target}: {err}");
        }
    }

    #[test]
    fn since_forms() {
        assert_eq!(parse_since("0", NOW), Ok(OffsetDateTime::UNIX_EPOCH));
        assert_eq!(
            parse_since("1777636800", NOW),
            Ok(datetime!(2026-05-01 12:00:00 UTC))
        );
        assert_eq!(
            parse_since("1d", NOW),
            Ok(datetime!(2026-04-30 12:00:00 UTC))
        );
        assert_eq!(
            parse_since("90m", NOW),
            Ok(datetime!(2026-05-01 10:30:00 UTC))
        );
        assert_eq!(
            parse_since("2026-04-01T08:00:00+02:00", NOW),
            Ok(datetime!(2026-04-01 06:00:00 UTC))
        );
        for bad in ["", "soon", "99999999999999999", "100000000000y", "1d ago"] {
            assert!(parse_since(bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn tail_forms() {
        assert_eq!(parse_tail("all"), Ok(None));
        assert_eq!(parse_tail("ALL"), Ok(None));
        assert_eq!(parse_tail("0"), Ok(Some(0)));
        assert!(parse_tail("ten").is_err());
    }
}

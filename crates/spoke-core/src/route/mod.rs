//! Azure IoT Edge's route language (spec §4.1; edgeHub's `Routing.Core` grammar, compiler and
//! builtins), I/O-free: [`Route::parse`] compiles one route statement, [`RouteTable`]
//! compiles the `$edgeHub` routes and answers where a message goes.
//!
//! ```text
//! [SELECT *] FROM <source> [WHERE <condition>] INTO <sink>
//!
//! source:    /messages/*  /messages/modules/{m}/*  /messages/modules/{m}/outputs/{o}
//!            /twinChangeNotifications  /*  ...
//! sink:      $upstream  |  BrokeredEndpoint("/modules/{module}/inputs/{input}")
//! condition: literals  true false null undefined 'str' "str" 12 -3 0x1F 1.5e3
//!            name (application property)   $name (application property $name, else
//!            system property name)   {$name} (system property)   $body.a.b[0] (JSON body)
//!            f(args)   ( )   - NOT   * / %   + - ||   < <= > >=   = != <>   AND   OR   ??
//!            (tightest first; binary operators are left-associative)
//! ```
//!
//! - Keywords `SELECT FROM WHERE INTO AND OR NOT` and `$upstream`/`BrokeredEndpoint` ignore
//!   case; `true false null undefined` are lower case. Tokens follow edgeHub's lexer
//!   exactly, including its surprises: names may hold `- + * . ' ! % |`, so write spaces
//!   around operators (`a-b` is one name, `a - b` a subtraction); see `lexer.rs`.
//! - Sources match by case-insensitive prefix after trimming trailing `*` and `/`
//!   ([`MessageSource::path`] gives a message's path): `FROM /*` matches everything,
//!   `FROM /messages/*` everything but twin change notifications.
//! - Conditions are type-checked when the route compiles, as edgeHub does: application and
//!   system properties are strings, so `temp > 30` is an error (write
//!   `as_number(temp) > 30`), while `$body` values are dynamic and compare with anything
//!   (`$body.temp > 30`). See `types.rs`; functions are listed in `builtins.rs`.
//! - Evaluation (see `eval.rs`): properties ignore case; a condition matches only when it
//!   evaluates to boolean `true`, so comparisons with an undefined value never match, and
//!   `NOT` of an undefined comparison does not match either. [`system_property`] tells
//!   where each `$name` lives in a [`Message`].
//! - `twin_change_includes(properties.desired.x)` (also `properties.reported.`, `tags.`) is
//!   true when the twin change body has a non-null value there; it is allowed only on
//!   routes `FROM /twinChangeNotifications`, and reads the body as JSON whatever its
//!   content type.
//! - Priorities and TTLs (spec §3.2): a route's priority is 0 (highest) to 9, or
//!   [`DEFAULT_PRIORITY`] when unset; [`RouteTable::destinations`] sends a message once per
//!   sink, with the highest priority (and that route's TTL) among the routes that match.
//!
//! Deliberate differences from edgeHub, where its behaviour is a bug or an accident:
//! - a `$body` path that does not exist is `undefined` (edgeHub: `null`, so
//!   `is_defined($body.missing)` is true there), and `is_null` is true for null values
//!   (edgeHub's `is_null` on a `$body` value is inverted);
//! - text after the sink is an error (edgeHub ignores it);
//! - `%` and unary `-` work on `$body` values (edgeHub fails to compile them), and
//!   `true AND $body.flag` type-checks (edgeHub only accepts a `$body` operand on the left);
//! - `twin_change_includes` compiles on twin change routes (edgeHub's check of the route
//!   source never succeeds, so it rejects every use);
//! - a null `$body` value in `AND`/`OR`/`NOT` behaves like the literal `null`;
//! - strings are measured and indexed in characters (.NET: UTF-16 units), `as_number`
//!   reads plain decimals only, and a `BrokeredEndpoint` input may not be empty or hold
//!   `+` or `#`.
//!
//! Invariants: a parsed [`Route`] evaluates without error or panic against any message;
//! recursion is bounded by [`MAX_DEPTH`]; the `Display` text of a route parses back to an
//! equal route. [`fuzzing`] holds the fuzz entry point.
//!
//! Layout: `lexer` (tokens) → `parser` (tree, `types` checks) → `ast` (+ `display`) →
//! `eval` (+ `builtins`) → `table` (route sets); `endpoints` holds sources and sinks.

mod ast;
mod builtins;
mod display;
mod endpoints;
mod error;
mod eval;
pub mod fuzzing;
mod lexer;
mod parser;
mod table;
mod types;

pub use endpoints::{MessageSource, Sink};
pub use error::{RouteError, RouteErrorKind};
pub use eval::system_property;
pub use table::{Destination, RouteTable};

use ast::Expr;
use endpoints::Source;
use eval::Scope;

use crate::manifest::RouteSpec;
use crate::message::Message;

/// Deepest accepted nesting of expressions and parentheses in a condition.
pub const MAX_DEPTH: usize = 128;

/// The priority of a route that sets none: lower than every settable priority (0..=9),
/// standing for edgeHub's `RouteFactory.DefaultPriority` (2,000,000,000).
pub const DEFAULT_PRIORITY: u8 = u8::MAX;

/// edgeHub's default route when its configuration has none (spec §4.1).
pub const DEFAULT_ROUTE: &str = "FROM /* INTO $upstream";

/// One compiled route.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The route's name (its key in the `$edgeHub` desired properties).
    pub name: String,
    /// Where matching messages go.
    pub sink: Sink,
    /// 0 (highest) ..= 9, or [`DEFAULT_PRIORITY`].
    pub priority: u8,
    /// Time-to-live of messages sent by this route, or `None` for the global one.
    pub ttl_secs: Option<u32>,
    source: Source,
    /// `None` when there is no `WHERE`: every message from the source matches.
    condition: Option<Expr>,
}

impl Route {
    /// Compiles the route statement `text`, named `name` (for errors), with the default
    /// priority and no TTL of its own.
    pub fn parse(name: &str, text: &str) -> Result<Route, RouteError> {
        let parsed = parser::parse_route(text).map_err(|(kind, position)| RouteError {
            route: name.to_owned(),
            position,
            kind,
        })?;
        Ok(Route {
            name: name.to_owned(),
            sink: parsed.sink,
            priority: DEFAULT_PRIORITY,
            ttl_secs: None,
            source: parsed.source,
            condition: parsed.condition,
        })
    }

    /// Compiles a route of the `$edgeHub` desired properties, with its priority and TTL.
    pub fn from_spec(name: &str, spec: &RouteSpec) -> Result<Route, RouteError> {
        let mut route = Self::parse(name, &spec.text)?;
        route.priority = spec.priority.unwrap_or(DEFAULT_PRIORITY);
        route.ttl_secs = spec.ttl_secs;
        Ok(route)
    }

    /// Whether a message from `source` is routed by this route: the source matches and the
    /// condition, if any, is `true`.
    pub fn matches(&self, source: &MessageSource, msg: &Message) -> bool {
        self.matches_in(source, &Scope::new(msg))
    }

    fn matches_in(&self, source: &MessageSource, scope: &Scope<'_>) -> bool {
        self.source.matches(source)
            && self
                .condition
                .as_ref()
                .is_none_or(|condition| eval::is_true(condition, scope))
    }
}

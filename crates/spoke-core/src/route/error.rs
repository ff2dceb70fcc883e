//! The one error type of the route language: which route, what went wrong, and where.
//!
//! Every error carries the zero-based *character* position in the route text where the
//! problem was found: the offending token for syntax errors, the operator or function name
//! for type errors (as edgeHub's `ErrorListener` reports them), the endpoint string for a bad
//! `BrokeredEndpoint` address.

use crate::ids::IdError;

/// A route that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route {route:?}: {kind} at {position}")]
pub struct RouteError {
    /// The route's name (its key under `routes` in the `$edgeHub` desired properties).
    pub route: String,
    /// Zero-based character offset in the route text.
    pub position: usize,
    /// What is wrong.
    pub kind: RouteErrorKind,
}

/// What is wrong with a route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteErrorKind {
    /// A character that starts no token (`@`, `;`, `:`, `\`, a lone `?` or `[` ...).
    #[error("unexpected character {0:?}")]
    UnexpectedChar(char),
    /// A name holding `[` or `]` that is not a `$` property (only `$body` queries index).
    #[error("unexpected {0:?}: only $body queries may use [ ]")]
    Brackets(String),
    /// A string literal without its closing quote.
    #[error("unterminated string literal")]
    UnterminatedString,
    /// A backslash escape other than `\' \" \\ \uXXXX`, or a lone surrogate.
    #[error("invalid escape sequence in string literal")]
    InvalidEscape,
    /// The parser needed one thing and found another.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What the grammar allows here.
        expected: &'static str,
        /// A description of the token found.
        found: String,
    },
    /// Expressions or parentheses are nested too deeply.
    #[error("condition is nested deeper than {max} levels")]
    TooDeep {
        /// The limit, [`super::MAX_DEPTH`].
        max: usize,
    },
    /// An operator applied to operands of types it does not take (edgeHub checks types when
    /// it compiles a route, so `temperature > 30` on a string property is an error).
    #[error("invalid operands to {arity}operator '{op}': have {have}")]
    Operands {
        /// `"unary "` or `"binary "`.
        arity: &'static str,
        /// The operator as written canonically.
        op: &'static str,
        /// The operand types, such as `'string' and 'number'`.
        have: String,
    },
    /// A call to a function the language does not have.
    #[error("invalid built-in function {0:?}")]
    UnknownFunction(String),
    /// A built-in function called with arguments of the wrong number or types.
    #[error("invalid arguments to built-in function '{name}': {name}({have})")]
    Arguments {
        /// The function's canonical name.
        name: &'static str,
        /// The argument types, comma-separated.
        have: String,
    },
    /// `twin_change_includes` on a route that does not read twin change notifications, or
    /// with something other than a `properties.desired.`, `properties.reported.` or `tags.`
    /// path.
    #[error("twin_change_includes {0}")]
    TwinChangeIncludes(&'static str),
    /// A `$body.` query whose path is empty or malformed (allowed: `name` or `name[n]`
    /// segments joined by `.`).
    #[error("invalid $body query {0:?}")]
    BodyQuery(String),
    /// A `$name` sink other than `$upstream`.
    #[error("system endpoint {0:?} is not supported (only $upstream)")]
    SystemEndpoint(String),
    /// A function sink other than `BrokeredEndpoint`.
    #[error("function endpoint {0:?} is not supported (only BrokeredEndpoint)")]
    FunctionEndpoint(String),
    /// A `BrokeredEndpoint` address that is not `/modules/{module}/inputs/{input}`.
    #[error("BrokeredEndpoint address {0:?} is not /modules/{{module}}/inputs/{{input}}")]
    EndpointAddress(String),
    /// A `BrokeredEndpoint` naming an invalid module ID.
    #[error("BrokeredEndpoint module {module:?} is not a valid module ID")]
    EndpointModule {
        /// The module as written.
        module: String,
        /// Why it is invalid.
        #[source]
        error: IdError,
    },
}

//! The one error type of the query language: what went wrong and where.
//!
//! Every error carries the zero-based *character* position in the query text where the
//! problem was found, so the hub can return it verbatim in its 400 response (spec §5.5).
//! Semantic errors (for example a projection missing from `GROUP BY`) point at the start of
//! the offending clause item.

/// A query or target condition that cannot be parsed or is not supported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at position {position}")]
pub struct QueryError {
    /// Zero-based character offset in the query text.
    pub position: usize,
    /// What is wrong.
    pub kind: QueryErrorKind,
}

/// What is wrong with a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryErrorKind {
    /// The text is longer than the documented limit.
    #[error("query is longer than {max} characters")]
    TooLong {
        /// The limit, [`super::MAX_QUERY_LEN`].
        max: usize,
    },
    /// Expressions or parentheses are nested too deeply.
    #[error("expression is nested deeper than {max} levels")]
    TooDeep {
        /// The limit, [`super::MAX_DEPTH`].
        max: usize,
    },
    /// A character that starts no token.
    #[error("unexpected character {0:?}")]
    UnexpectedChar(char),
    /// A string literal without its closing quote.
    #[error("unterminated string literal")]
    UnterminatedString,
    /// A backslash escape other than `\' \" \\ \/ \b \f \n \r \t \uXXXX`, or a lone surrogate.
    #[error("invalid escape sequence in string literal")]
    InvalidEscape,
    /// A `[[` path segment without its closing `]]`.
    #[error("unterminated [[ ]] path segment")]
    UnterminatedSegment,
    /// A malformed or out-of-range number.
    #[error("invalid number {0:?}")]
    InvalidNumber(String),
    /// The parser needed one thing and found another.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What the grammar allows here.
        expected: &'static str,
        /// A description of the token found.
        found: String,
    },
    /// `FROM` names something other than `devices`, `devices.modules` or `devices.jobs`.
    #[error("unknown collection {0:?}")]
    UnknownCollection(String),
    /// A call to a function the language does not have.
    #[error("unknown function {0:?}")]
    UnknownFunction(String),
    /// A function called with the wrong number of arguments.
    #[error("function {name} takes {expected} argument(s), got {got}")]
    Arity {
        /// The function, as written.
        name: String,
        /// How many arguments it takes.
        expected: usize,
        /// How many were given.
        got: usize,
    },
    /// `COUNT`, `AVG`, `SUM`, `MIN` or `MAX` outside the `SELECT` list.
    #[error("aggregate {0} is only allowed in the SELECT list")]
    AggregateOutsideSelect(String),
    /// `TOP` with something other than a non-negative integer that fits 32 bits.
    #[error("TOP needs a non-negative integer up to 4294967295")]
    InvalidTop,
    /// Two projections would produce the same output property.
    #[error("duplicate output property {0:?}")]
    DuplicateName(String),
    /// A plain path projected next to aggregates without being a `GROUP BY` key.
    #[error("projection {0} must be listed in GROUP BY when aggregates or GROUP BY are used")]
    NotGrouped(String),
    /// `SELECT *` together with `GROUP BY`.
    #[error("SELECT * cannot be combined with GROUP BY")]
    StarWithGroupBy,
    /// `devices.jobs` supports only `SELECT *` without `GROUP BY` (spec §5.5).
    #[error("queries on devices.jobs support only SELECT * without GROUP BY")]
    JobsProjection,
    /// A target condition over `devices.jobs`.
    #[error("a target condition can only select from devices or devices.modules")]
    JobsTarget,
}

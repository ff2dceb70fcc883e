//! Tokenizer for routes, following edgeHub's ANTLR lexer (`GrammarLexer.g4`) exactly: at each
//! position the longest match wins, and of equally long matches the rule listed first.
//!
//! Rules, in their order:
//! - `{` `}`; the keywords `SELECT FROM WHERE INTO` (any case);
//! - strings in `"` or `'` with the escapes `\" \' \\ \uXXXX` only (raw newlines are fine);
//! - numbers: `-?[0-9]+`, `0x[0-9a-fA-F]+`, reals `-?[0-9]*.[0-9]+([eE][+-]?[0-9]+)?` and
//!   `-?[0-9]*[eE][+-]?[0-9]+` (so `-5` is one literal, and `e5` is a real that does not parse,
//!   hence `undefined`);
//! - `true false null undefined` (lower case only; `TRUE` is an application property);
//! - `( ) , + - * / %`, then `AND OR NOT` (any case), then `= != <> <= >= > < || ??`;
//! - `$` followed by one or more *path characters*: a `$` property such as `$body.a[0]`;
//! - identifiers: one or more *name characters*, i.e. anything but
//!   `( ) < > @ , ; : \ " / [ ] ? = { }`, space, tab, CR and LF. So `a-b`, `a.b`, `x*2` and
//!   `'a'||'b'` are each one identifier, while `a - b` is a subtraction;
//! - a run of path characters (name characters plus `[ ]`) that is not a `$` property is an
//!   error, as is any character no rule matches;
//! - spaces, tabs, CR, LF and `/* ... */` comments are skipped.
//!
//! Invariant: every token carries the character position where it starts, and the list
//! always ends with [`Token::Eof`].

use super::error::RouteErrorKind as K;
use crate::literal::unicode_escape;

/// One token of a route.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    Select,
    From,
    Where,
    Into,
    And,
    Or,
    Not,
    True,
    False,
    Null,
    Undefined,
    Str(String),
    /// A number literal; `None` when its text is not a number edgeHub can read (`e5`, a hex
    /// literal beyond 64 bits), which makes the literal `undefined`.
    Number(Option<f64>),
    /// `$` and a path, as written.
    SysProp(String),
    Ident(String),
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Concat,
    Coalesce,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Eof,
}

impl Token {
    /// A short description for error messages.
    pub(crate) fn describe(&self) -> String {
        let symbol = match self {
            Self::Str(s) => return format!("string {s:?}"),
            Self::Number(Some(n)) => return format!("number {n}"),
            Self::Number(None) => return "number literal".to_owned(),
            Self::SysProp(s) => return format!("property {s}"),
            Self::Ident(s) => return format!("identifier {s:?}"),
            Self::Eof => return "end of route".to_owned(),
            Self::Select => "SELECT",
            Self::From => "FROM",
            Self::Where => "WHERE",
            Self::Into => "INTO",
            Self::And => "AND",
            Self::Or => "OR",
            Self::Not => "NOT",
            Self::True => "true",
            Self::False => "false",
            Self::Null => "null",
            Self::Undefined => "undefined",
            Self::LParen => "(",
            Self::RParen => ")",
            Self::LBrace => "{",
            Self::RBrace => "}",
            Self::Comma => ",",
            Self::Plus => "+",
            Self::Minus => "-",
            Self::Star => "*",
            Self::Slash => "/",
            Self::Percent => "%",
            Self::Concat => "||",
            Self::Coalesce => "??",
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        };
        format!("'{symbol}'")
    }
}

/// A token and the character position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned {
    pub(crate) token: Token,
    pub(crate) pos: usize,
}

/// Whether `c` may appear in an identifier (edgeHub's `ID_CHARS`).
pub(crate) fn is_name_char(c: char) -> bool {
    !matches!(
        c,
        '(' | ')'
            | '<'
            | '>'
            | '@'
            | ','
            | ';'
            | ':'
            | '\\'
            | '"'
            | '/'
            | '['
            | ']'
            | '?'
            | '='
            | '{'
            | '}'
            | ' '
            | '\t'
            | '\n'
            | '\r'
    )
}

/// Whether `c` may appear in a `$` property (edgeHub's `QUERY_PATH_CHARS`).
pub(crate) fn is_path_char(c: char) -> bool {
    is_name_char(c) || c == '[' || c == ']'
}

/// Keywords (any case) and the fixed lower-case words, with their tokens, in rule order.
const WORDS: [(&str, bool, Token); 11] = [
    ("select", false, Token::Select),
    ("from", false, Token::From),
    ("where", false, Token::Where),
    ("into", false, Token::Into),
    ("true", true, Token::True),
    ("false", true, Token::False),
    ("null", true, Token::Null),
    ("undefined", true, Token::Undefined),
    ("and", false, Token::And),
    ("or", false, Token::Or),
    ("not", false, Token::Not),
];

/// Operators and punctuation, two-character ones first.
const SYMBOLS: [(&str, Token); 19] = [
    ("!=", Token::Ne),
    ("<>", Token::Ne),
    ("<=", Token::Le),
    (">=", Token::Ge),
    ("||", Token::Concat),
    ("??", Token::Coalesce),
    ("(", Token::LParen),
    (")", Token::RParen),
    ("{", Token::LBrace),
    ("}", Token::RBrace),
    (",", Token::Comma),
    ("+", Token::Plus),
    ("-", Token::Minus),
    ("*", Token::Star),
    ("/", Token::Slash),
    ("%", Token::Percent),
    ("=", Token::Eq),
    ("<", Token::Lt),
    (">", Token::Gt),
];

/// Splits `input` into tokens, ending with [`Token::Eof`]; a lexical error is its kind and
/// character position.
pub(crate) fn tokenize(input: &str) -> Result<Vec<Spanned>, (K, usize)> {
    let chars: Vec<char> = input.chars().collect();
    let mut lexer = Lexer {
        chars: &chars,
        at: 0,
        comment_close: None,
    };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_blanks();
        let pos = lexer.at;
        let token = lexer.token()?;
        let end = token == Token::Eof;
        tokens.push(Spanned { token, pos });
        if end {
            return Ok(tokens);
        }
    }
}

struct Lexer<'c> {
    chars: &'c [char],
    at: usize,
    /// The last search for a comment's closing `*/`: from where, and where it was found.
    comment_close: Option<(usize, Option<usize>)>,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn run(&self, from: usize, pred: fn(char) -> bool) -> usize {
        self.chars[from.min(self.chars.len())..]
            .iter()
            .take_while(|&&c| pred(c))
            .count()
    }

    fn text(&self, len: usize) -> String {
        self.chars[self.at..self.at + len].iter().collect()
    }

    fn starts_with(&self, word: &str, any_case: bool) -> bool {
        let mut i = self.at;
        word.chars().all(|w| {
            let c = self.chars.get(i).copied();
            i += 1;
            c.is_some_and(|c| c == w || (any_case && c.eq_ignore_ascii_case(&w)))
        })
    }

    /// Skips whitespace and comments. A comment needs its closing `*/`; searches share one
    /// cached result so that many unclosed `/*` stay linear.
    fn skip_blanks(&mut self) {
        loop {
            self.at += self.run(self.at, |c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            if !self.starts_with("/*", false) {
                return;
            }
            let from = self.at + 2;
            let close = match self.comment_close {
                Some((searched, found)) if searched <= from && found.is_none_or(|f| f >= from) => {
                    found
                }
                _ => {
                    let found = (from..self.chars.len().saturating_sub(1))
                        .find(|&i| self.chars[i] == '*' && self.chars[i + 1] == '/');
                    self.comment_close = Some((from, found));
                    found
                }
            };
            match close {
                Some(end) => self.at = end + 2,
                None => return,
            }
        }
    }

    /// The next token: the longest match, the earliest rule on a tie.
    fn token(&mut self) -> Result<Token, (K, usize)> {
        let Some(c) = self.peek(0) else {
            return Ok(Token::Eof);
        };
        let name_len = self.run(self.at, is_name_char);
        // Candidates in rule order; `max_by_key` would keep the last of equals, so compare
        // lengths by hand.
        let mut best: Option<(usize, Token)> = None;
        let mut offer = |len: usize, token: Token| {
            if len > 0 && best.as_ref().is_none_or(|(l, _)| len > *l) {
                best = Some((len, token));
            }
        };
        if c == '\'' || c == '"' {
            match self.string(c) {
                Ok((len, s)) if len >= name_len => return Ok(self.take(len, Token::Str(s))),
                Err((kind, pos, len)) if len >= name_len => return Err((kind, pos)),
                _ => {}
            }
        }
        for (len, value) in self.numbers() {
            offer(len, Token::Number(value));
        }
        for (word, exact, token) in WORDS {
            if word.len() == name_len && self.starts_with(word, !exact) {
                offer(name_len, token);
            }
        }
        if let Some((symbol, token)) = SYMBOLS
            .into_iter()
            .find(|(s, _)| self.starts_with(s, false))
        {
            offer(symbol.len(), token);
        }
        let path_len = self.run(self.at, is_path_char);
        if c == '$' && path_len > 1 {
            offer(path_len, Token::SysProp(self.text(path_len)));
        }
        offer(name_len, Token::Ident(self.text(name_len)));
        match best {
            Some((len, token)) if len >= path_len => Ok(self.take(len, token)),
            _ if path_len > 0 => Err((K::Brackets(self.text(path_len)), self.at)),
            _ => Err((K::UnexpectedChar(c), self.at)),
        }
    }

    fn take(&mut self, len: usize, token: Token) -> Token {
        self.at += len;
        token
    }

    /// A string literal at the cursor: its length and value, or the error, where it is, and
    /// how long the unterminated string would be (an identifier may still be longer).
    fn string(&self, quote: char) -> Result<(usize, String), (K, usize, usize)> {
        let mut i = self.at + 1;
        let mut out = String::new();
        loop {
            let Some(&c) = self.chars.get(i) else {
                return Err((K::UnterminatedString, self.at, i - self.at));
            };
            if c == quote {
                return Ok((i + 1 - self.at, out));
            }
            if c != '\\' {
                out.push(c);
                i += 1;
                continue;
            }
            match self.chars.get(i + 1) {
                Some(&e @ ('"' | '\'' | '\\')) => {
                    out.push(e);
                    i += 2;
                }
                Some('u') => match unicode_escape(self.chars, i + 2) {
                    Some((decoded, len)) => {
                        out.push(decoded);
                        i += 2 + len;
                    }
                    None => return Err((K::InvalidEscape, i, i - self.at)),
                },
                _ => return Err((K::InvalidEscape, i, i - self.at)),
            }
        }
    }

    /// The integer, hexadecimal and real literals matching at the cursor, in rule order, as
    /// (length, value).
    fn numbers(&self) -> [(usize, Option<f64>); 3] {
        let digits = |from: usize| self.run(from, |c| c.is_ascii_digit());
        let exponent = |at: usize| {
            if !matches!(self.chars.get(at), Some('e' | 'E')) {
                return 0;
            }
            let sign = usize::from(matches!(self.chars.get(at + 1), Some('+' | '-')));
            match digits(at + 1 + sign) {
                0 => 0,
                n => 1 + sign + n,
            }
        };
        let start = self.at + usize::from(self.peek(0) == Some('-'));
        let whole = digits(start);
        let integer = if whole > 0 {
            start + whole - self.at
        } else {
            0
        };
        let hex = if self.peek(0) == Some('0') && matches!(self.peek(1), Some('x' | 'X')) {
            match self.run(self.at + 2, |c| c.is_ascii_hexdigit()) {
                0 => 0,
                n => n + 2,
            }
        } else {
            0
        };
        let point = start + whole;
        let fraction = if self.chars.get(point) == Some(&'.') {
            digits(point + 1)
        } else {
            0
        };
        let real = if fraction > 0 {
            let end = point + 1 + fraction;
            end + exponent(end) - self.at
        } else {
            match exponent(point) {
                0 => 0,
                n => point + n - self.at,
            }
        };
        let decimal = |len: usize| self.text(len).parse::<f64>().ok();
        let hex_value = u64::from_str_radix(self.text(hex).get(2..).unwrap_or_default(), 16)
            .ok()
            .map(|n| n as i64 as f64);
        [
            (integer, decimal(integer)),
            (hex, hex_value),
            (real, decimal(real)),
        ]
    }
}

#[cfg(test)]
#[path = "lexer_tests.rs"]
mod tests;

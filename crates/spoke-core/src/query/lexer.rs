//! Tokenizer for the hub query language (spec §5.5, and the "Expressions and conditions"
//! section of Microsoft Learn's page on the query language).
//!
//! Lexical rules:
//! - Keywords are case-insensitive (`select`, `SELECT` and `Select` are the same token).
//! - Identifiers start with a letter, `_` or `$` and continue with letters, digits, `_` or
//!   `$`, so `properties.desired.$version` is a path. Directly after a `.`, any run of those
//!   characters (even one starting with a digit, or spelling a keyword) is a plain name.
//! - `[[...]]` is a path segment holding any characters up to the first `]]`, as in
//!   `configurations.[[my-config]].status`. A literal `[[` therefore always opens a segment;
//!   write `[ [1] ]` for a nested array.
//! - Strings are in `'` or `"` with the escapes `\' \" \\ \/ \b \f \n \r \t \uXXXX`.
//! - Numbers are decimal (`12`, `1.5`, `2e-3`) or hexadecimal (`0x1F`); signs are operators.
//! - `!=` and `<>` are the same operator.
//!
//! Invariant: every token carries the character position where it starts, and the list
//! always ends with [`Token::Eof`].

use super::error::{QueryError, QueryErrorKind};
use crate::literal::unicode_escape;

/// A reserved word. Reserved only where an expression or clause may start, never after `.`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    Select,
    Top,
    As,
    From,
    Where,
    Group,
    By,
    And,
    Or,
    Not,
    In,
    Nin,
    True,
    False,
    Null,
    Undefined,
}

const KEYWORDS: [(&str, Keyword); 16] = [
    ("select", Keyword::Select),
    ("top", Keyword::Top),
    ("as", Keyword::As),
    ("from", Keyword::From),
    ("where", Keyword::Where),
    ("group", Keyword::Group),
    ("by", Keyword::By),
    ("and", Keyword::And),
    ("or", Keyword::Or),
    ("not", Keyword::Not),
    ("in", Keyword::In),
    ("nin", Keyword::Nin),
    ("true", Keyword::True),
    ("false", Keyword::False),
    ("null", Keyword::Null),
    ("undefined", Keyword::Undefined),
];

impl Keyword {
    /// The keyword spelled by `word`, ignoring ASCII case.
    pub(crate) fn lookup(word: &str) -> Option<Self> {
        KEYWORDS
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(word))
            .map(|&(_, kw)| kw)
    }

    /// The keyword in upper case, as `Display` writes it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Select => "SELECT",
            Self::Top => "TOP",
            Self::As => "AS",
            Self::From => "FROM",
            Self::Where => "WHERE",
            Self::Group => "GROUP",
            Self::By => "BY",
            Self::And => "AND",
            Self::Or => "OR",
            Self::Not => "NOT",
            Self::In => "IN",
            Self::Nin => "NIN",
            Self::True => "true",
            Self::False => "false",
            Self::Null => "null",
            Self::Undefined => "undefined",
        }
    }
}

/// One token of the query text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    /// An identifier that is not a keyword, or any name directly after `.`.
    Ident(String),
    /// The content of a `[[...]]` path segment.
    Segment(String),
    Keyword(Keyword),
    Str(String),
    Num(f64),
    Star,
    Comma,
    Dot,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Slash,
    Percent,
    Eof,
}

impl Token {
    /// A short description for error messages.
    pub(crate) fn describe(&self) -> String {
        let symbol = match self {
            Self::Ident(s) => return format!("identifier {s:?}"),
            Self::Segment(s) => return format!("path segment [[{s}]]"),
            Self::Keyword(k) => return format!("keyword {}", k.as_str()),
            Self::Str(s) => return format!("string {s:?}"),
            Self::Num(n) => return format!("number {n}"),
            Self::Eof => return "end of query".to_owned(),
            Self::Star => "*",
            Self::Comma => ",",
            Self::Dot => ".",
            Self::LParen => "(",
            Self::RParen => ")",
            Self::LBracket => "[",
            Self::RBracket => "]",
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Plus => "+",
            Self::Minus => "-",
            Self::Slash => "/",
            Self::Percent => "%",
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

/// Whether `c` may start an identifier.
pub(crate) fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

/// Whether `c` may continue an identifier (or form a name after `.`).
pub(crate) fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Splits `input` into tokens, ending with [`Token::Eof`].
pub(crate) fn tokenize(input: &str) -> Result<Vec<Spanned>, QueryError> {
    let chars: Vec<char> = input.chars().collect();
    let mut lexer = Lexer {
        chars: &chars,
        at: 0,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer<'c> {
    chars: &'c [char],
    at: usize,
    tokens: Vec<Spanned>,
}

fn err(position: usize, kind: QueryErrorKind) -> QueryError {
    QueryError { position, kind }
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn run(&mut self) -> Result<(), QueryError> {
        loop {
            while self.peek(0).is_some_and(char::is_whitespace) {
                self.at += 1;
            }
            let start = self.at;
            let Some(c) = self.peek(0) else {
                self.tokens.push(Spanned {
                    token: Token::Eof,
                    pos: start,
                });
                return Ok(());
            };
            let after_dot = self.tokens.last().is_some_and(|t| t.token == Token::Dot);
            let token = if after_dot && is_ident_char(c) {
                Token::Ident(self.take_while(is_ident_char))
            } else if is_ident_start(c) {
                let word = self.take_while(is_ident_char);
                Keyword::lookup(&word).map_or(Token::Ident(word), Token::Keyword)
            } else if c.is_ascii_digit() {
                Token::Num(self.number()?)
            } else if c == '\'' || c == '"' {
                Token::Str(self.string(c)?)
            } else if c == '[' && self.peek(1) == Some('[') {
                Token::Segment(self.segment()?)
            } else {
                self.operator(c)?
            };
            self.tokens.push(Spanned { token, pos: start });
        }
    }

    fn take_while(&mut self, pred: fn(char) -> bool) -> String {
        let start = self.at;
        while self.peek(0).is_some_and(pred) {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    fn operator(&mut self, c: char) -> Result<Token, QueryError> {
        let two = |second: char, this: &Self| this.peek(1) == Some(second);
        let (token, len) = match c {
            '*' => (Token::Star, 1),
            ',' => (Token::Comma, 1),
            '.' => (Token::Dot, 1),
            '(' => (Token::LParen, 1),
            ')' => (Token::RParen, 1),
            '[' => (Token::LBracket, 1),
            ']' => (Token::RBracket, 1),
            '=' => (Token::Eq, 1),
            '!' if two('=', self) => (Token::Ne, 2),
            '<' if two('>', self) => (Token::Ne, 2),
            '<' if two('=', self) => (Token::Le, 2),
            '<' => (Token::Lt, 1),
            '>' if two('=', self) => (Token::Ge, 2),
            '>' => (Token::Gt, 1),
            '+' => (Token::Plus, 1),
            '-' => (Token::Minus, 1),
            '/' => (Token::Slash, 1),
            '%' => (Token::Percent, 1),
            other => return Err(err(self.at, QueryErrorKind::UnexpectedChar(other))),
        };
        self.at += len;
        Ok(token)
    }

    fn number(&mut self) -> Result<f64, QueryError> {
        let start = self.at;
        let digits = |this: &mut Self| {
            while this.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                this.at += 1;
            }
        };
        let value = if self.peek(0) == Some('0') && matches!(self.peek(1), Some('x' | 'X')) {
            self.at += 2;
            let hex_start = self.at;
            while self.peek(0).is_some_and(|c| c.is_ascii_hexdigit()) {
                self.at += 1;
            }
            let hex: String = self.chars[hex_start..self.at].iter().collect();
            u64::from_str_radix(&hex, 16).ok().map(|n| n as f64)
        } else {
            digits(self);
            if self.peek(0) == Some('.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
                self.at += 1;
                digits(self);
            }
            if matches!(self.peek(0), Some('e' | 'E')) {
                let sign = usize::from(matches!(self.peek(1), Some('+' | '-')));
                if self.peek(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                    self.at += 1 + sign;
                    digits(self);
                }
            }
            let text: String = self.chars[start..self.at].iter().collect();
            text.parse::<f64>().ok().filter(|n| n.is_finite())
        };
        // A number glued to a name (`12abc`, `1e`, `0xZZ`) is a typo, not two tokens.
        let glued = self.peek(0).is_some_and(is_ident_char);
        while self.peek(0).is_some_and(is_ident_char) {
            self.at += 1;
        }
        match value {
            Some(n) if !glued => Ok(n),
            _ => {
                let text = self.chars[start..self.at].iter().collect();
                Err(err(start, QueryErrorKind::InvalidNumber(text)))
            }
        }
    }

    fn string(&mut self, quote: char) -> Result<String, QueryError> {
        let start = self.at;
        self.at += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek(0) else {
                return Err(err(start, QueryErrorKind::UnterminatedString));
            };
            self.at += 1;
            if c == quote {
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let escape_at = self.at - 1;
            let bad = || err(escape_at, QueryErrorKind::InvalidEscape);
            let Some(e) = self.peek(0) else {
                return Err(err(start, QueryErrorKind::UnterminatedString));
            };
            self.at += 1;
            out.push(match e {
                '\'' | '"' | '\\' | '/' => e,
                'b' => '\u{8}',
                'f' => '\u{c}',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'u' => {
                    let (c, len) = unicode_escape(self.chars, self.at).ok_or_else(bad)?;
                    self.at += len;
                    c
                }
                _ => return Err(bad()),
            });
        }
    }

    fn segment(&mut self) -> Result<String, QueryError> {
        let start = self.at;
        self.at += 2;
        let content_start = self.at;
        while self.at < self.chars.len() {
            if self.chars[self.at] == ']' && self.peek(1) == Some(']') {
                let content = self.chars[content_start..self.at].iter().collect();
                self.at += 2;
                return Ok(content);
            }
            self.at += 1;
        }
        Err(err(start, QueryErrorKind::UnterminatedSegment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(input: &str) -> Vec<Token> {
        tokenize(input)
            .unwrap()
            .into_iter()
            .map(|s| s.token)
            .collect()
    }

    fn ident(s: &str) -> Token {
        Token::Ident(s.to_owned())
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(
            toks("select Top fRoM where"),
            vec![
                Token::Keyword(Keyword::Select),
                Token::Keyword(Keyword::Top),
                Token::Keyword(Keyword::From),
                Token::Keyword(Keyword::Where),
                Token::Eof
            ]
        );
    }

    #[test]
    fn names_after_dot_are_never_keywords_or_numbers() {
        assert_eq!(
            toks("tags.from.0x1.$version"),
            vec![
                ident("tags"),
                Token::Dot,
                ident("from"),
                Token::Dot,
                ident("0x1"),
                Token::Dot,
                ident("$version"),
                Token::Eof
            ]
        );
    }

    #[test]
    fn bracketed_segments_keep_any_character() {
        assert_eq!(
            toks("configurations.[[my-cfg.1 x]].status"),
            vec![
                ident("configurations"),
                Token::Dot,
                Token::Segment("my-cfg.1 x".to_owned()),
                Token::Dot,
                ident("status"),
                Token::Eof
            ]
        );
        assert_eq!(
            tokenize("a.[[open").unwrap_err().kind,
            QueryErrorKind::UnterminatedSegment
        );
    }

    #[test]
    fn strings_in_both_quotes_with_escapes() {
        assert_eq!(
            toks(r#"'it\'s' "say \"hi\"""#)[..2],
            [
                Token::Str("it's".to_owned()),
                Token::Str("say \"hi\"".to_owned())
            ]
        );
        assert_eq!(toks(r"'\u00e9\n\\'")[0], Token::Str("é\n\\".to_owned()));
        assert_eq!(toks(r"'\ud83d\ude00'")[0], Token::Str("😀".to_owned()));
        assert_eq!(toks("'a\"b'")[0], Token::Str("a\"b".to_owned()));
        for bad in [r"'\x'", r"'\u12'", r"'\ud83d'", r"'\udc00'"] {
            assert_eq!(
                tokenize(bad).unwrap_err().kind,
                QueryErrorKind::InvalidEscape,
                "{bad}"
            );
        }
        let e = tokenize("x = 'open").unwrap_err();
        assert_eq!(
            (e.position, e.kind),
            (4, QueryErrorKind::UnterminatedString)
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(
            toks("12 1.5 2e-3 0x1F 7E2")[..5],
            [
                Token::Num(12.0),
                Token::Num(1.5),
                Token::Num(0.002),
                Token::Num(31.0),
                Token::Num(700.0)
            ]
        );
        assert_eq!(toks("1.x")[..3], [Token::Num(1.0), Token::Dot, ident("x")]);
        for bad in ["12abc", "0x", "0xZZ", "1e999", "1e", "0x1FFFFFFFFFFFFFFFF"] {
            assert!(
                matches!(
                    tokenize(bad).unwrap_err().kind,
                    QueryErrorKind::InvalidNumber(_)
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn operators() {
        assert_eq!(
            toks("= != <> < <= > >= + - * / % ( ) [ ] ,")[..17],
            [
                Token::Eq,
                Token::Ne,
                Token::Ne,
                Token::Lt,
                Token::Le,
                Token::Gt,
                Token::Ge,
                Token::Plus,
                Token::Minus,
                Token::Star,
                Token::Slash,
                Token::Percent,
                Token::LParen,
                Token::RParen,
                Token::LBracket,
                Token::RBracket,
                Token::Comma
            ]
        );
        let e = tokenize("a ! b").unwrap_err();
        assert_eq!(
            (e.position, e.kind),
            (2, QueryErrorKind::UnexpectedChar('!'))
        );
    }

    #[test]
    fn positions_are_character_offsets() {
        let spans = tokenize("é = 'x'").unwrap();
        assert_eq!(
            spans.iter().map(|s| s.pos).collect::<Vec<_>>(),
            vec![0, 2, 4, 7]
        );
    }
}

//! Recursive-descent parser and type checker for routes (edgeHub's `Route.g4` and
//! `Condition.g4`).
//!
//! ```text
//! route     := [SELECT '*'] FROM source [WHERE expr] INTO sink <end>
//! source    := ('/' ('*' | name))+
//! sink      := $upstream | BrokeredEndpoint '(' string ')'     (both ignoring case)
//! expr      := unary {binop unary}      (precedence climbing, loosest first:
//!                                        '??'  OR  AND  '=' '!=' '<>'  '<' '<=' '>' '>='
//!                                        '+' '-' '||'  '*' '/' '%'; all left-associative)
//! unary     := '-' unary | NOT unary | primary
//! primary   := literal | name | $prop | '{' $prop '}' | name '(' [expr {',' expr}] ')'
//!            | '(' expr ')'
//! ```
//!
//! Checked here, so that evaluation cannot fail:
//! - operand and argument types (see [`super::types`] and [`super::builtins`]);
//! - `$body` query paths, and `twin_change_includes` (only on `FROM /twinChangeNotifications`,
//!   with one `properties.desired.`, `properties.reported.` or `tags.` path);
//! - parser recursion and tree depth stay within [`MAX_DEPTH`] (a clear error instead of a
//!   stack overflow on inputs like ten thousand `(`);
//! - the sink is `$upstream` or a `BrokeredEndpoint` whose address, trimmed and without one
//!   leading and one trailing `/`, has exactly four `/`-separated parts, the second a valid
//!   module ID and the fourth a non-empty input name without `+` or `#` (edgeHub reads the
//!   module and input from those parts and, like it, the first and third are not checked);
//! - nothing follows the sink (edgeHub's grammar silently ignores trailing text).

use super::MAX_DEPTH;
use super::ast::{BinOp, Expr, Literal, Lookup, PREC_AND, PREC_COALESCE, PREC_OR};
use super::builtins::{Builtin, TWIN_CHANGE_INCLUDES};
use super::endpoints::{Sink, Source, Step};
use super::error::RouteErrorKind as K;
use super::lexer::{Spanned, Token, tokenize};
use super::types::{self, Ty};
use crate::ids::ModuleId;

/// An expression, its static type, and the depth of its tree (a leaf has depth 1).
type Node = (Expr, Ty, usize);
type Result<T> = std::result::Result<T, (K, usize)>;

/// The parts of a parsed route.
pub(crate) struct Parsed {
    pub(crate) source: Source,
    pub(crate) condition: Option<Expr>,
    pub(crate) sink: Sink,
}

/// Parses and checks a route statement.
pub(crate) fn parse_route(text: &str) -> Result<Parsed> {
    let tokens = tokenize(text)?;
    Parser {
        tokens: &tokens,
        at: 0,
        nesting: 0,
        twin_source: false,
    }
    .route()
}

/// Builds a tree node over children of depth `child_depth`, enforcing [`MAX_DEPTH`].
fn node(expr: Expr, ty: Ty, child_depth: usize, pos: usize) -> Result<Node> {
    let depth = child_depth + 1;
    if depth > MAX_DEPTH {
        return Err((K::TooDeep { max: MAX_DEPTH }, pos));
    }
    Ok((expr, ty, depth))
}

/// The prefixes `twin_change_includes` accepts (edgeHub's `TwinChangeJsonPathValidator`).
const TWIN_PREFIXES: [&str; 3] = ["properties.reported.", "properties.desired.", "tags."];

/// A binary operator token.
#[derive(Clone, Copy)]
enum Op {
    Bin(BinOp),
    And,
    Or,
}

impl Op {
    fn of(token: &Token) -> Option<Self> {
        Some(Self::Bin(match token {
            Token::And => return Some(Self::And),
            Token::Or => return Some(Self::Or),
            Token::Coalesce => BinOp::Coalesce,
            Token::Eq => BinOp::Eq,
            Token::Ne => BinOp::Ne,
            Token::Lt => BinOp::Lt,
            Token::Le => BinOp::Le,
            Token::Gt => BinOp::Gt,
            Token::Ge => BinOp::Ge,
            Token::Plus => BinOp::Add,
            Token::Minus => BinOp::Sub,
            Token::Concat => BinOp::Concat,
            Token::Star => BinOp::Mul,
            Token::Slash => BinOp::Div,
            Token::Percent => BinOp::Rem,
            _ => return None,
        }))
    }

    fn precedence(self) -> u8 {
        match self {
            Self::Bin(op) => op.precedence(),
            Self::And => PREC_AND,
            Self::Or => PREC_OR,
        }
    }
}

/// `left op right`, type-checked; `AND` and `OR` flatten operands of their own kind.
fn combine(
    op: Op,
    (left, left_ty, left_depth): Node,
    (right, right_ty, right_depth): Node,
) -> std::result::Result<Node, K> {
    let (and, left_items, right_items) = match (op, left, right) {
        (Op::Bin(op), left, right) => {
            let ty = types::binary(op, left_ty, right_ty)?;
            let expr = Expr::Binary(op, Box::new(left), Box::new(right));
            return Ok((expr, ty, left_depth.max(right_depth) + 1));
        }
        (Op::And, Expr::And(l), Expr::And(r)) => (true, Ok(l), Ok(r)),
        (Op::And, Expr::And(l), r) => (true, Ok(l), Err(r)),
        (Op::And, l, Expr::And(r)) => (true, Err(l), Ok(r)),
        (Op::And, l, r) => (true, Err(l), Err(r)),
        (Op::Or, Expr::Or(l), Expr::Or(r)) => (false, Ok(l), Ok(r)),
        (Op::Or, Expr::Or(l), r) => (false, Ok(l), Err(r)),
        (Op::Or, l, Expr::Or(r)) => (false, Err(l), Ok(r)),
        (Op::Or, l, r) => (false, Err(l), Err(r)),
    };
    let ty = types::logical(and, left_ty, right_ty)?;
    let mut items = Vec::new();
    let mut depth = 0;
    for (side, side_depth) in [(left_items, left_depth), (right_items, right_depth)] {
        match side {
            Ok(flat) => {
                items.extend(flat);
                depth = depth.max(side_depth - 1);
            }
            Err(single) => {
                items.push(single);
                depth = depth.max(side_depth);
            }
        }
    }
    let expr = if and {
        Expr::And(items)
    } else {
        Expr::Or(items)
    };
    Ok((expr, ty, depth + 1))
}

struct Parser<'t> {
    /// Never empty: the lexer always ends the list with `Eof`, and `bump` never passes it.
    tokens: &'t [Spanned],
    at: usize,
    /// Current recursion depth of the expression parser.
    nesting: usize,
    /// Whether the route reads twin change notifications (`twin_change_includes` allowed).
    twin_source: bool,
}

impl<'t> Parser<'t> {
    fn peek(&self) -> &'t Token {
        &self.tokens[self.at].token
    }

    fn peek2(&self) -> &'t Token {
        self.tokens
            .get(self.at + 1)
            .map_or(&Token::Eof, |s| &s.token)
    }

    fn pos(&self) -> usize {
        self.tokens[self.at].pos
    }

    fn bump(&mut self) -> &'t Token {
        let token = self.peek();
        if *token != Token::Eof {
            self.at += 1;
        }
        token
    }

    fn eat(&mut self, token: &Token) -> bool {
        let found = self.peek() == token;
        if found {
            self.bump();
        }
        found
    }

    fn expected<T>(&self, expected: &'static str) -> Result<T> {
        let found = self.peek().describe();
        Err((K::Expected { expected, found }, self.pos()))
    }

    fn expect(&mut self, token: &Token, what: &'static str) -> Result<()> {
        if self.eat(token) {
            Ok(())
        } else {
            self.expected(what)
        }
    }

    // ----- route -----

    fn route(&mut self) -> Result<Parsed> {
        if self.eat(&Token::Select) {
            self.expect(&Token::Star, "'*'")?;
            self.expect(&Token::From, "FROM")?;
        } else {
            self.expect(&Token::From, "SELECT or FROM")?;
        }
        let source = self.source()?;
        self.twin_source = source.is_twin_changes();
        let condition = if self.eat(&Token::Where) {
            Some(self.expr()?.0)
        } else {
            None
        };
        let into = if condition.is_some() {
            "INTO"
        } else {
            "WHERE or INTO"
        };
        self.expect(&Token::Into, into)?;
        let sink = self.sink()?;
        self.expect(&Token::Eof, "end of route")?;
        Ok(Parsed {
            source,
            condition,
            sink,
        })
    }

    fn source(&mut self) -> Result<Source> {
        let mut steps = Vec::new();
        while self.eat(&Token::Slash) {
            let step = match self.peek() {
                Token::Star => Step::Star,
                Token::Ident(name) => Step::Name(name.clone()),
                _ => return self.expected("a name or '*' after '/'"),
            };
            self.bump();
            steps.push(step);
        }
        if steps.is_empty() {
            return self.expected("a source path such as /messages/*");
        }
        Ok(Source::new(steps))
    }

    fn sink(&mut self) -> Result<Sink> {
        let pos = self.pos();
        match (self.peek(), self.peek2()) {
            (Token::SysProp(name), _) if name.eq_ignore_ascii_case("$upstream") => {
                self.bump();
                Ok(Sink::Upstream)
            }
            (Token::SysProp(name), _) => Err((K::SystemEndpoint(name.clone()), pos)),
            (Token::Ident(name), Token::LParen)
                if name.eq_ignore_ascii_case("BrokeredEndpoint") =>
            {
                self.bump();
                self.bump();
                let address_pos = self.pos();
                let Token::Str(address) = self.peek() else {
                    return self.expected("an address string");
                };
                self.bump();
                self.expect(&Token::RParen, "')'")?;
                brokered_endpoint(address).map_err(|kind| (kind, address_pos))
            }
            (Token::Ident(name), Token::LParen) => Err((K::FunctionEndpoint(name.clone()), pos)),
            _ => self.expected("$upstream or BrokeredEndpoint(\"...\")"),
        }
    }

    // ----- expressions -----

    fn enter(&mut self) -> Result<()> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err((K::TooDeep { max: MAX_DEPTH }, self.pos()));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Node> {
        self.enter()?;
        let node = self.climb(PREC_COALESCE)?;
        self.nesting -= 1;
        Ok(node)
    }

    /// Precedence climbing: an operand, then every binary operator binding at least as
    /// tightly as `min` (left-associative: the right operand only takes tighter ones).
    fn climb(&mut self, min: u8) -> Result<Node> {
        let mut left = self.unary()?;
        loop {
            let pos = self.pos();
            let Some(op) = Op::of(self.peek()) else {
                return Ok(left);
            };
            let prec = op.precedence();
            if prec < min {
                return Ok(left);
            }
            self.bump();
            let right = self.climb(prec + 1)?;
            left = combine(op, left, right).map_err(|kind| (kind, pos))?;
            if left.2 > MAX_DEPTH {
                return Err((K::TooDeep { max: MAX_DEPTH }, pos));
            }
        }
    }

    fn unary(&mut self) -> Result<Node> {
        let pos = self.pos();
        let negate = match self.peek() {
            Token::Minus => true,
            Token::Not => false,
            _ => return self.primary(),
        };
        self.bump();
        self.enter()?;
        let (inner, inner_ty, depth) = self.unary()?;
        self.nesting -= 1;
        let ty = types::unary(negate, inner_ty).map_err(|kind| (kind, pos))?;
        let inner = Box::new(inner);
        let expr = if negate {
            Expr::Neg(inner)
        } else {
            Expr::Not(inner)
        };
        node(expr, ty, depth, pos)
    }

    fn primary(&mut self) -> Result<Node> {
        let pos = self.pos();
        let literal = match self.peek() {
            Token::Number(Some(n)) => Literal::Number(*n),
            Token::Number(None) | Token::Undefined => Literal::Undefined,
            Token::Str(s) => Literal::Str(s.clone()),
            Token::True => Literal::Bool(true),
            Token::False => Literal::Bool(false),
            Token::Null => Literal::Null,
            Token::LParen => {
                self.bump();
                let node = self.expr()?;
                self.expect(&Token::RParen, "')'")?;
                return Ok(node);
            }
            Token::SysProp(raw) => {
                self.bump();
                return Self::property(raw, false, pos);
            }
            Token::LBrace => {
                self.bump();
                let Token::SysProp(raw) = self.peek() else {
                    return self.expected("a $ property after '{'");
                };
                let raw_pos = self.pos();
                self.bump();
                self.expect(&Token::RBrace, "'}'")?;
                return Self::property(raw, true, raw_pos);
            }
            Token::Ident(name) if *self.peek2() == Token::LParen => return self.call(name, pos),
            Token::Ident(name) => {
                self.bump();
                return node(Expr::App(name.clone()), Ty::Str, 0, pos);
            }
            _ => return self.expected("an expression"),
        };
        self.bump();
        let ty = literal.ty();
        node(Expr::Literal(literal), ty, 0, pos)
    }

    fn property(raw: &str, escaped: bool, pos: usize) -> Result<Node> {
        let (lookup, ty) =
            Lookup::classify(raw, escaped).map_err(|path| (K::BodyQuery(path), pos))?;
        let expr = Expr::Sys {
            raw: raw.to_owned(),
            escaped,
            lookup,
        };
        node(expr, ty, 0, pos)
    }

    fn call(&mut self, name: &str, pos: usize) -> Result<Node> {
        if name.eq_ignore_ascii_case(TWIN_CHANGE_INCLUDES) {
            return self.twin_change_includes(pos);
        }
        let Some(function) = Builtin::lookup(name) else {
            return Err((K::UnknownFunction(name.to_owned()), pos));
        };
        self.bump();
        self.bump();
        let (mut args, mut arg_types, mut depth) = (Vec::new(), Vec::new(), 0);
        if !self.eat(&Token::RParen) {
            loop {
                let (arg, ty, d) = self.expr()?;
                args.push(arg);
                arg_types.push(ty);
                depth = depth.max(d);
                if self.eat(&Token::RParen) {
                    break;
                }
                self.expect(&Token::Comma, "',' or ')'")?;
            }
        }
        let Some(ty) = function.result(&arg_types) else {
            let have = arg_types.iter().map(Ty::to_string).collect::<Vec<_>>();
            let name = function.name();
            return Err((
                K::Arguments {
                    name,
                    have: have.join(", "),
                },
                pos,
            ));
        };
        node(Expr::Call(function, args), ty, depth, pos)
    }

    fn twin_change_includes(&mut self, pos: usize) -> Result<Node> {
        if !self.twin_source {
            let kind =
                K::TwinChangeIncludes("is only valid on routes FROM /twinChangeNotifications");
            return Err((kind, pos));
        }
        self.bump();
        self.bump();
        let (Token::Ident(path), Token::RParen) = (self.peek(), self.peek2()) else {
            let kind = K::TwinChangeIncludes("takes one twin path such as properties.desired.x");
            return Err((kind, pos));
        };
        let path = path.clone();
        let prefixed = TWIN_PREFIXES.iter().any(|prefix| {
            path.get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        });
        if !prefixed || path.split('.').any(str::is_empty) {
            let kind = K::TwinChangeIncludes(
                "needs a path under properties.desired., properties.reported. or tags.",
            );
            return Err((kind, self.pos()));
        }
        self.bump();
        self.bump();
        node(Expr::TwinChangeIncludes(path), Ty::Bool, 0, pos)
    }
}

/// Reads a `BrokeredEndpoint` address (see the module docs).
fn brokered_endpoint(address: &str) -> std::result::Result<Sink, K> {
    let trimmed = address.trim();
    let trimmed = trimmed.strip_prefix('/').unwrap_or(trimmed);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let parts: Vec<&str> = trimmed.split('/').collect();
    let bad = || K::EndpointAddress(address.to_owned());
    let [_, module, _, input] = parts[..] else {
        return Err(bad());
    };
    if input.is_empty() || input.contains(['+', '#']) {
        return Err(bad());
    }
    let module = ModuleId::parse(module).map_err(|error| K::EndpointModule {
        module: module.to_owned(),
        error,
    })?;
    Ok(Sink::ModuleInput {
        module,
        input: input.to_owned(),
    })
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;

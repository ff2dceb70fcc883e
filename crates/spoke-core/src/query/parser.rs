//! Recursive-descent parser for queries and target conditions (spec §5.5, §5.6).
//!
//! Grammar (keywords case-insensitive; precedence from loosest to tightest):
//! ```text
//! query      := SELECT [TOP int] ('*' | item {',' item}) FROM collection
//!               [WHERE expr] [GROUP BY path {',' path}]
//! item       := (path | COUNT '(' ')' | (AVG|SUM|MIN|MAX) '(' path ')') [AS ident]
//! collection := devices | devices.modules | devices.jobs
//! target     := [FROM (devices | devices.modules) WHERE] ('*' | expr)
//! expr       := or;  or := and {OR and};  and := not {AND not};  not := NOT not | cmp
//! cmp        := add {('=' | '!=' | '<>' | '<' | '<=' | '>' | '>=' | IN | NIN) add}
//! add        := mul {('+' | '-') mul};  mul := unary {('*' | '/' | '%') unary}
//! unary      := ('-' | '+') unary | primary
//! primary    := number | string | true | false | null | undefined | '(' expr ')'
//!             | '[' [expr {',' expr}] ']' | function '(' [expr {',' expr}] ')' | path
//! path       := (ident | '[[' text ']]') {'.' (name | '[[' text ']]')}
//! ```
//!
//! Rules checked here, so that execution cannot fail:
//! - the text is at most [`MAX_QUERY_LEN`] characters (Azure's documented limit);
//! - parser recursion and tree depth stay within [`MAX_DEPTH`] (a clear error instead of a
//!   stack overflow on inputs like ten thousand `(`);
//! - aggregates appear only in the `SELECT` list; functions exist and get their arity;
//! - `devices.jobs` allows only `SELECT *` without `GROUP BY` (spec §5.5), and its paths
//!   may carry the documented `devices.jobs.` prefix, which is removed (repeatedly);
//! - with aggregates or `GROUP BY`, every projected path is a `GROUP BY` key, and `SELECT *`
//!   is not allowed with `GROUP BY`;
//! - output property names (alias, last path segment, or `$n`) are unique, ignoring case.

use super::ast::{
    Aggregate, ArithOp, Collection, CompareOp, Condition, Expr, Function, Literal, Path,
    Projection, Query, SelectItem, SelectList,
};
use super::error::{QueryError, QueryErrorKind as K};
use super::lexer::{Keyword, Spanned, Token, tokenize};
use super::{MAX_DEPTH, MAX_QUERY_LEN};

/// An expression and the depth of its tree (a leaf has depth 1).
type Node = (Expr, usize);
type Result<T> = std::result::Result<T, QueryError>;

/// Parses a full `SELECT` query.
pub(crate) fn parse_query(input: &str) -> Result<Query> {
    let tokens = lex(input)?;
    Parser::new(&tokens).query()
}

/// Parses a bare condition: `*` or a `WHERE` expression.
pub(crate) fn parse_condition(input: &str) -> Result<Condition> {
    let tokens = lex(input)?;
    let mut parser = Parser::new(&tokens);
    let condition = parser.condition_body()?;
    parser.expect_eof()?;
    Ok(condition)
}

/// Parses a configuration target condition, which may start with
/// `FROM devices.modules WHERE` (module configurations, spec §5.6).
pub(crate) fn parse_target(input: &str) -> Result<(Collection, Condition)> {
    let tokens = lex(input)?;
    let mut parser = Parser::new(&tokens);
    let from = if parser.eat_kw(Keyword::From) {
        let pos = parser.pos();
        let from = parser.collection()?;
        if from == Collection::Jobs {
            return Err(QueryError {
                position: pos,
                kind: K::JobsTarget,
            });
        }
        parser.expect(&Token::Keyword(Keyword::Where), "WHERE")?;
        from
    } else {
        Collection::Devices
    };
    let condition = parser.condition_body()?;
    parser.expect_eof()?;
    Ok((from, condition))
}

fn fail<T>(position: usize, kind: K) -> Result<T> {
    Err(QueryError { position, kind })
}

/// Builds a tree node over children of depth `child_depth`, enforcing [`MAX_DEPTH`].
fn node(expr: Expr, child_depth: usize, pos: usize) -> Result<Node> {
    let depth = child_depth + 1;
    if depth > MAX_DEPTH {
        return fail(pos, K::TooDeep { max: MAX_DEPTH });
    }
    Ok((expr, depth))
}

fn lex(input: &str) -> Result<Vec<Spanned>> {
    if input.chars().count() > MAX_QUERY_LEN {
        return Err(QueryError {
            position: MAX_QUERY_LEN,
            kind: K::TooLong { max: MAX_QUERY_LEN },
        });
    }
    tokenize(input)
}

struct Parser<'t> {
    /// Never empty: the lexer always ends the list with `Eof`, and `bump` never passes it.
    tokens: &'t [Spanned],
    at: usize,
    /// Current recursion depth of the expression parser.
    nesting: usize,
    /// Whether paths lose a leading `devices.jobs.` (queries on `devices.jobs`).
    strip_jobs_prefix: bool,
}

impl<'t> Parser<'t> {
    fn new(tokens: &'t [Spanned]) -> Self {
        Self {
            tokens,
            at: 0,
            nesting: 0,
            strip_jobs_prefix: false,
        }
    }

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

    fn eat_kw(&mut self, keyword: Keyword) -> bool {
        self.eat(&Token::Keyword(keyword))
    }

    fn expected<T>(&self, expected: &'static str) -> Result<T> {
        fail(
            self.pos(),
            K::Expected {
                expected,
                found: self.peek().describe(),
            },
        )
    }

    fn expect(&mut self, token: &Token, what: &'static str) -> Result<()> {
        if self.eat(token) {
            Ok(())
        } else {
            self.expected(what)
        }
    }

    fn expect_eof(&mut self) -> Result<()> {
        self.expect(&Token::Eof, "end of query")
    }

    // ----- clauses -----

    fn query(&mut self) -> Result<Query> {
        self.expect(&Token::Keyword(Keyword::Select), "SELECT")?;
        let top = if self.eat_kw(Keyword::Top) {
            Some(self.top()?)
        } else {
            None
        };
        let select_pos = self.pos();
        let mut item_positions = Vec::new();
        let select = if self.eat(&Token::Star) {
            SelectList::All
        } else {
            let mut items = Vec::new();
            loop {
                item_positions.push(self.pos());
                items.push(self.select_item()?);
                if !self.eat(&Token::Comma) {
                    break;
                }
            }
            SelectList::Items(items)
        };
        self.expect(&Token::Keyword(Keyword::From), "FROM or ','")?;
        let from = self.collection()?;
        self.strip_jobs_prefix = from == Collection::Jobs;
        let filter = if self.eat_kw(Keyword::Where) {
            Condition {
                expr: Some(self.expr()?.0),
            }
        } else {
            Condition { expr: None }
        };
        let group_pos = self.pos();
        let mut group_by = Vec::new();
        if self.eat_kw(Keyword::Group) {
            self.expect(&Token::Keyword(Keyword::By), "BY")?;
            loop {
                group_by.push(self.path()?);
                if !self.eat(&Token::Comma) {
                    break;
                }
            }
        }
        self.expect_eof()?;
        let query = Query {
            top,
            select,
            from,
            filter,
            group_by,
        };
        Self::validate(&query, select_pos, &item_positions, group_pos)?;
        Ok(query)
    }

    fn validate(
        query: &Query,
        select_pos: usize,
        item_positions: &[usize],
        group_pos: usize,
    ) -> Result<()> {
        let items = match &query.select {
            _ if query.from == Collection::Jobs => {
                if query.select == SelectList::All && query.group_by.is_empty() {
                    return Ok(());
                }
                return fail(select_pos, K::JobsProjection);
            }
            SelectList::All if query.group_by.is_empty() => return Ok(()),
            SelectList::All => return fail(group_pos, K::StarWithGroupBy),
            SelectList::Items(items) => items,
        };
        let names = SelectItem::declared_names(items);
        for (i, name) in names.iter().enumerate() {
            if names[..i].iter().any(|n| n.eq_ignore_ascii_case(name)) {
                return fail(item_positions[i], K::DuplicateName(name.clone()));
            }
        }
        let grouped = query.aggregates();
        for (item, &pos) in items.iter().zip(item_positions) {
            if let Projection::Path(path) = &item.projection
                && grouped
                && !query.group_by.iter().any(|g| g.same_as(path))
            {
                return fail(pos, K::NotGrouped(path.to_string()));
            }
        }
        Ok(())
    }

    fn top(&mut self) -> Result<u32> {
        let pos = self.pos();
        match self.bump() {
            Token::Num(n) if n.fract() == 0.0 && *n <= f64::from(u32::MAX) => Ok(*n as u32),
            _ => fail(pos, K::InvalidTop),
        }
    }

    fn select_item(&mut self) -> Result<SelectItem> {
        let projection = match (self.peek(), self.peek2()) {
            (Token::Ident(name), Token::LParen) if Aggregate::is_name(name) => {
                Projection::Aggregate(self.aggregate(name)?)
            }
            (Token::Ident(_), Token::LParen) => {
                return self.expected("property path or aggregate");
            }
            _ => Projection::Path(self.path()?),
        };
        let alias = if self.eat_kw(Keyword::As) {
            match self.peek() {
                Token::Ident(alias) => {
                    self.bump();
                    Some(alias.clone())
                }
                _ => return self.expected("alias name"),
            }
        } else {
            None
        };
        Ok(SelectItem { projection, alias })
    }

    fn aggregate(&mut self, name: &str) -> Result<Aggregate> {
        self.bump();
        self.bump();
        if name.eq_ignore_ascii_case("count") {
            self.expect(&Token::RParen, "')' (COUNT takes no argument)")?;
            return Ok(Aggregate::Count);
        }
        let path = self.path()?;
        self.expect(&Token::RParen, "')'")?;
        let lower = name.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "avg" => Aggregate::Avg(path),
            "sum" => Aggregate::Sum(path),
            "min" => Aggregate::Min(path),
            _ => Aggregate::Max(path),
        })
    }

    fn collection(&mut self) -> Result<Collection> {
        let pos = self.pos();
        let Token::Ident(name) = self.peek() else {
            return self.expected("devices, devices.modules or devices.jobs");
        };
        self.bump();
        if !name.eq_ignore_ascii_case("devices") {
            return fail(pos, K::UnknownCollection(name.clone()));
        }
        if !self.eat(&Token::Dot) {
            return Ok(Collection::Devices);
        }
        match self.peek() {
            Token::Ident(sub) if sub.eq_ignore_ascii_case("modules") => {
                self.bump();
                Ok(Collection::Modules)
            }
            Token::Ident(sub) if sub.eq_ignore_ascii_case("jobs") => {
                self.bump();
                Ok(Collection::Jobs)
            }
            Token::Ident(sub) => fail(pos, K::UnknownCollection(format!("devices.{sub}"))),
            _ => self.expected("modules or jobs"),
        }
    }

    fn condition_body(&mut self) -> Result<Condition> {
        if self.eat(&Token::Star) {
            return Ok(Condition { expr: None });
        }
        Ok(Condition {
            expr: Some(self.expr()?.0),
        })
    }

    fn path(&mut self) -> Result<Path> {
        let mut segments = Vec::new();
        match self.peek() {
            Token::Ident(s) | Token::Segment(s) => segments.push(s.clone()),
            _ => return self.expected("property path"),
        }
        self.bump();
        while self.eat(&Token::Dot) {
            match self.peek() {
                Token::Ident(s) | Token::Segment(s) => segments.push(s.clone()),
                _ => return self.expected("property name after '.'"),
            }
            self.bump();
        }
        // Repeatedly, so that printing the stripped path and parsing it again is stable.
        while self.strip_jobs_prefix
            && segments.len() > 2
            && segments[0].eq_ignore_ascii_case("devices")
            && segments[1].eq_ignore_ascii_case("jobs")
        {
            segments.drain(..2);
        }
        Ok(Path(segments))
    }

    // ----- expressions -----

    fn enter(&mut self) -> Result<()> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return fail(self.pos(), K::TooDeep { max: MAX_DEPTH });
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Node> {
        self.enter()?;
        let node = self.or()?;
        self.nesting -= 1;
        Ok(node)
    }

    fn or(&mut self) -> Result<Node> {
        self.logical(Keyword::Or)
    }

    /// `OR` (over `AND` operands) or `AND` (over `NOT` operands), flattened.
    fn logical(&mut self, keyword: Keyword) -> Result<Node> {
        let pos = self.pos();
        let operand = |p: &mut Self| {
            if keyword == Keyword::Or {
                p.logical(Keyword::And)
            } else {
                p.not()
            }
        };
        let first = operand(self)?;
        if *self.peek() != Token::Keyword(keyword) {
            return Ok(first);
        }
        let (mut items, mut depth) = (Vec::new(), 0);
        let mut push = |(expr, d): Node| match (expr, keyword) {
            (Expr::Or(inner), Keyword::Or) | (Expr::And(inner), Keyword::And) => {
                items.extend(inner);
                depth = depth.max(d - 1);
            }
            (expr, _) => {
                items.push(expr);
                depth = depth.max(d);
            }
        };
        push(first);
        while self.eat_kw(keyword) {
            push(operand(self)?);
        }
        let expr = if keyword == Keyword::Or {
            Expr::Or(items)
        } else {
            Expr::And(items)
        };
        node(expr, depth, pos)
    }

    fn not(&mut self) -> Result<Node> {
        let pos = self.pos();
        if !self.eat_kw(Keyword::Not) {
            return self.comparison();
        }
        self.enter()?;
        let (inner, depth) = self.not()?;
        self.nesting -= 1;
        node(Expr::Not(Box::new(inner)), depth, pos)
    }

    fn comparison(&mut self) -> Result<Node> {
        let (mut left, mut depth) = self.additive()?;
        loop {
            let pos = self.pos();
            let op = match self.peek() {
                Token::Eq => Some(CompareOp::Eq),
                Token::Ne => Some(CompareOp::Ne),
                Token::Lt => Some(CompareOp::Lt),
                Token::Le => Some(CompareOp::Le),
                Token::Gt => Some(CompareOp::Gt),
                Token::Ge => Some(CompareOp::Ge),
                Token::Keyword(Keyword::In | Keyword::Nin) => None,
                _ => return Ok((left, depth)),
            };
            let negated = self.bump() == &Token::Keyword(Keyword::Nin);
            let (right, right_depth) = self.additive()?;
            let (l, r) = (Box::new(left), Box::new(right));
            let expr = match op {
                Some(op) => Expr::Compare(op, l, r),
                None => Expr::In {
                    negated,
                    value: l,
                    list: r,
                },
            };
            (left, depth) = node(expr, depth.max(right_depth), pos)?;
        }
    }

    fn additive(&mut self) -> Result<Node> {
        let (mut left, mut depth) = self.multiplicative()?;
        loop {
            let pos = self.pos();
            let op = match self.peek() {
                Token::Plus => ArithOp::Add,
                Token::Minus => ArithOp::Sub,
                _ => return Ok((left, depth)),
            };
            self.bump();
            let (right, right_depth) = self.multiplicative()?;
            let expr = Expr::Arith(op, Box::new(left), Box::new(right));
            (left, depth) = node(expr, depth.max(right_depth), pos)?;
        }
    }

    fn multiplicative(&mut self) -> Result<Node> {
        let (mut left, mut depth) = self.unary()?;
        loop {
            let pos = self.pos();
            let op = match self.peek() {
                Token::Star => ArithOp::Mul,
                Token::Slash => ArithOp::Div,
                Token::Percent => ArithOp::Rem,
                _ => return Ok((left, depth)),
            };
            self.bump();
            let (right, right_depth) = self.unary()?;
            let expr = Expr::Arith(op, Box::new(left), Box::new(right));
            (left, depth) = node(expr, depth.max(right_depth), pos)?;
        }
    }

    fn unary(&mut self) -> Result<Node> {
        let pos = self.pos();
        let negate = match self.peek() {
            Token::Minus => true,
            Token::Plus => false,
            _ => return self.primary(),
        };
        self.bump();
        self.enter()?;
        let (inner, depth) = self.unary()?;
        self.nesting -= 1;
        if negate {
            node(Expr::Neg(Box::new(inner)), depth, pos)
        } else {
            Ok((inner, depth))
        }
    }

    fn primary(&mut self) -> Result<Node> {
        let pos = self.pos();
        let literal = match self.peek() {
            Token::Num(n) => Literal::Number(*n),
            Token::Str(s) => Literal::String(s.clone()),
            Token::Keyword(Keyword::True) => Literal::Bool(true),
            Token::Keyword(Keyword::False) => Literal::Bool(false),
            Token::Keyword(Keyword::Null) => Literal::Null,
            Token::Keyword(Keyword::Undefined) => Literal::Undefined,
            Token::LParen => {
                self.bump();
                let node = self.expr()?;
                self.expect(&Token::RParen, "')'")?;
                return Ok(node);
            }
            Token::LBracket => {
                self.bump();
                let (items, depth) = self.list(&Token::RBracket, "',' or ']'")?;
                return node(Expr::Array(items), depth, pos);
            }
            Token::Ident(name) if *self.peek2() == Token::LParen => return self.call(name, pos),
            Token::Ident(_) | Token::Segment(_) => {
                let path = self.path()?;
                return node(Expr::Path(path), 0, pos);
            }
            _ => return self.expected("expression"),
        };
        self.bump();
        node(Expr::Literal(literal), 0, pos)
    }

    fn call(&mut self, name: &str, pos: usize) -> Result<Node> {
        if Aggregate::is_name(name) {
            return fail(pos, K::AggregateOutsideSelect(name.to_ascii_uppercase()));
        }
        let Some(function) = Function::lookup(name) else {
            return fail(pos, K::UnknownFunction(name.to_owned()));
        };
        self.bump();
        self.bump();
        let (args, depth) = self.list(&Token::RParen, "',' or ')'")?;
        if args.len() != function.arity() {
            let kind = K::Arity {
                name: name.to_owned(),
                expected: function.arity(),
                got: args.len(),
            };
            return fail(pos, kind);
        }
        node(Expr::Call(function, args), depth, pos)
    }

    /// Comma-separated expressions up to `close` (already past the opening token).
    fn list(&mut self, close: &Token, what: &'static str) -> Result<(Vec<Expr>, usize)> {
        let (mut items, mut depth) = (Vec::new(), 0);
        if self.eat(close) {
            return Ok((items, depth));
        }
        loop {
            let (item, d) = self.expr()?;
            items.push(item);
            depth = depth.max(d);
            if self.eat(close) {
                return Ok((items, depth));
            }
            self.expect(&Token::Comma, what)?;
        }
    }
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;

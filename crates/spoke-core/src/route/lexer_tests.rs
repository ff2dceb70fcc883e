//! Unit tests of the route lexer: edgeHub's longest-match rules and their surprises.

use super::*;

fn toks(input: &str) -> Vec<Token> {
    tokenize(input)
        .unwrap_or_else(|e| panic!("{input:?}: {e:?}"))
        .into_iter()
        .map(|s| s.token)
        .collect()
}

fn ident(s: &str) -> Token {
    Token::Ident(s.to_owned())
}

fn num(n: f64) -> Token {
    Token::Number(Some(n))
}

#[test]
fn keywords() {
    assert_eq!(
        toks("select From WHERE into and Or NOT"),
        [
            Token::Select,
            Token::From,
            Token::Where,
            Token::Into,
            Token::And,
            Token::Or,
            Token::Not,
            Token::Eof
        ]
    );
    assert_eq!(
        toks("true false null undefined TRUE Null"),
        [
            Token::True,
            Token::False,
            Token::Null,
            Token::Undefined,
            ident("TRUE"),
            ident("Null"),
            Token::Eof
        ]
    );
    assert_eq!(toks("FROMx ANDY")[..2], [ident("FROMx"), ident("ANDY")]);
}

#[test]
fn names_swallow_operator_characters() {
    assert_eq!(
        toks("a-b a+b x*2 a.b")[..4],
        [ident("a-b"), ident("a+b"), ident("x*2"), ident("a.b")]
    );
    assert_eq!(toks("a - b")[..3], [ident("a"), Token::Minus, ident("b")]);
    assert_eq!(toks("temp>30")[..3], [ident("temp"), Token::Gt, num(30.0)]);
    assert_eq!(toks("a!=b")[..3], [ident("a!"), Token::Eq, ident("b")]);
    assert_eq!(toks("'a'||'b'")[..1], [ident("'a'||'b'")]);
    assert_eq!(toks("-a 5-3")[..2], [ident("-a"), ident("5-3")]);
}

#[test]
fn dollar_properties() {
    assert_eq!(
        toks("$body.a.b[0] $connectionModuleId $ {$x}"),
        [
            Token::SysProp("$body.a.b[0]".into()),
            Token::SysProp("$connectionModuleId".into()),
            ident("$"),
            Token::LBrace,
            Token::SysProp("$x".into()),
            Token::RBrace,
            Token::Eof
        ]
    );
    assert_eq!(
        toks("$body.x!='y'")[..3],
        [
            Token::SysProp("$body.x!".into()),
            Token::Eq,
            Token::Str("y".into())
        ]
    );
}

#[test]
fn numbers() {
    assert_eq!(
        toks("12 -5 1.5 .5 2e3 -1.5E-2 0x1F 0XfF")[..8],
        [
            num(12.0),
            num(-5.0),
            num(1.5),
            num(0.5),
            num(2000.0),
            num(-0.015),
            num(31.0),
            num(255.0)
        ]
    );
    assert_eq!(
        toks("e5 0xFFFFFFFFFFFFFFFF 0x1FFFFFFFFFFFFFFFF 1e999")[..4],
        [
            Token::Number(None),
            num(-1.0),
            Token::Number(None),
            num(f64::INFINITY)
        ]
    );
    assert_eq!(
        toks("1e 5. 1.2.3 0x1G")[..4],
        [ident("1e"), ident("5."), ident("1.2.3"), ident("0x1G")]
    );
    assert_eq!(toks("3 -5")[..2], [num(3.0), num(-5.0)]);
}

#[test]
fn strings() {
    assert_eq!(
        toks(r#"'it\'s' "say \"hi\"" 'a"b' '\u00e9\\' '\ud83d\ude00'"#)[..5],
        [
            Token::Str("it's".into()),
            Token::Str("say \"hi\"".into()),
            Token::Str("a\"b".into()),
            Token::Str("é\\".into()),
            Token::Str("😀".into())
        ]
    );
    assert_eq!(toks("'multi\nline'")[0], Token::Str("multi\nline".into()));
    assert_eq!(toks("'ab'c")[0], ident("'ab'c"));
    assert_eq!(tokenize("x = 'open"), Err((K::UnterminatedString, 4)));
    assert_eq!(tokenize("\"open"), Err((K::UnterminatedString, 0)));
    for (bad, at) in [
        (r"'\n'", 1),
        (r"'a\x'", 2),
        (r"'\u12'", 1),
        (r"'\ud83d'", 1),
    ] {
        assert_eq!(tokenize(bad), Err((K::InvalidEscape, at)), "{bad}");
    }
}

#[test]
fn operators() {
    assert_eq!(
        toks("( ) { } , + - * / % || ?? = != <> < <= > >=")[..19],
        [
            Token::LParen,
            Token::RParen,
            Token::LBrace,
            Token::RBrace,
            Token::Comma,
            Token::Plus,
            Token::Minus,
            Token::Star,
            Token::Slash,
            Token::Percent,
            Token::Concat,
            Token::Coalesce,
            Token::Eq,
            Token::Ne,
            Token::Ne,
            Token::Lt,
            Token::Le,
            Token::Gt,
            Token::Ge
        ]
    );
}

#[test]
fn comments_and_sources() {
    assert_eq!(
        toks("/messages/* INTO")[..5],
        [
            Token::Slash,
            ident("messages"),
            Token::Slash,
            Token::Star,
            Token::Into
        ]
    );
    assert_eq!(toks("a /* note */ b")[..2], [ident("a"), ident("b")]);
    assert_eq!(
        toks("/*/a")[..4],
        [Token::Slash, Token::Star, Token::Slash, ident("a")]
    );
    assert_eq!(toks("/*/*/x")[..1], [ident("x")]);
    assert_eq!(
        toks("/a/**")[..4],
        [Token::Slash, ident("a"), Token::Slash, ident("**")]
    );
}

#[test]
fn errors() {
    assert_eq!(tokenize("a @ b"), Err((K::UnexpectedChar('@'), 2)));
    assert_eq!(tokenize("a ? b"), Err((K::UnexpectedChar('?'), 2)));
    assert_eq!(tokenize("x = a[0]"), Err((K::Brackets("a[0]".into()), 4)));
    assert_eq!(tokenize("["), Err((K::Brackets("[".into()), 0)));
}

#[test]
fn positions_are_character_offsets() {
    let spans = tokenize("é = 'x'").unwrap();
    assert_eq!(
        spans.iter().map(|s| s.pos).collect::<Vec<_>>(),
        vec![0, 2, 4, 7]
    );
}

#[test]
fn unclosed_comments_stay_linear() {
    let input = "/* ".repeat(20_000);
    let tokens = tokenize(&input).unwrap();
    assert_eq!(tokens.len(), 40_001);
}

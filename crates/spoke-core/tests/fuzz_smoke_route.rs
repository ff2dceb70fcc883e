//! Stable smoke run of `route::fuzzing::fuzz_route`: the committed corpus, then seeded
//! byte-level mutations of it spliced with slices of other seeds and fresh inputs drawn from
//! the route grammar's characters (`spoke-fuzz-smoke`), then random routes built from the
//! grammar with mostly well-typed conditions (so the round trip and evaluation run often),
//! then pathological inputs that must fail cleanly (deep nesting, long chains, unclosed
//! comments and strings).

use spoke_core::route::Route;
use spoke_core::route::fuzzing::fuzz_route;
use spoke_fuzz_smoke::{Rng, Smoke};

const STRUCTURED: usize = 6_000;

/// Characters that matter to the route grammar.
const ROUTE_BYTES: &[u8] = b"/*(){}[],.'\"\\$-+%|?=!<> 0x1e5aFROMWHEREINTOANDORNOT_body";

#[test]
fn corpus_and_mutations() {
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "route")
        .alphabet(ROUTE_BYTES)
        .max_len(96)
        .min_corpus(15)
        .run(0x5eed_2007_e5ee, fuzz_route);
}

/// Random route text: a source, a condition of mostly agreeing types, a sink, with random
/// spacing, keyword case and parentheses (left out now and then to exercise precedence).
struct Routes(Rng);

impl Routes {
    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.0.below(options.len())]
    }

    /// `text` in parentheses most of the time.
    fn group(&mut self, text: String) -> String {
        if self.0.chance(4) {
            text
        } else {
            format!("({text})")
        }
    }

    fn keyword(&mut self, word: &str) -> String {
        if self.0.chance(3) {
            word.to_lowercase()
        } else {
            word.to_owned()
        }
    }

    fn boolean(&mut self, depth: usize) -> String {
        if depth == 0 {
            return self
                .pick(&["true", "false", "null", "$body.ok", "is_defined(a)"])
                .to_owned();
        }
        let d = depth - 1;
        match self.0.below(8) {
            0 => {
                let (l, r) = (self.number(d), self.number(d));
                let op = self.pick(&["<", "<=", ">", ">=", "=", "!=", "<>"]);
                format!("{} {op} {}", self.group(l), self.group(r))
            }
            1 => {
                let (l, r) = (self.string(d), self.string(d));
                let op = self.pick(&["=", "!=", "<"]);
                format!("{} {op} {}", self.group(l), self.group(r))
            }
            2 => {
                let inner = self.boolean(d);
                format!("{} {}", self.keyword("NOT"), self.group(inner))
            }
            3 | 4 => {
                let (l, r) = (self.boolean(d), self.boolean(d));
                let op = self.pick(&["AND", "OR"]);
                format!("{} {} {}", self.group(l), self.keyword(op), self.group(r))
            }
            5 => {
                let (s, part) = (self.string(d), self.string(d));
                let f = self.pick(&["starts_with", "ENDS_WITH", "contains"]);
                format!("{f}({s}, {part})")
            }
            6 => {
                let f = self.pick(&["is_defined", "is_null", "IS_STRING", "is_number", "is_bool"]);
                let arg = if self.0.chance(2) {
                    self.number(d)
                } else {
                    self.string(d)
                };
                format!("{f}({arg})")
            }
            _ => {
                let (l, r) = (self.boolean(d), self.boolean(d));
                format!("{} ?? {}", self.group(l), self.group(r))
            }
        }
    }

    fn number(&mut self, depth: usize) -> String {
        if depth == 0 {
            let leaf = [
                "1",
                "-2.5",
                "0x1F",
                "1e3",
                ".5",
                "$body.temp",
                "$body.a.b[1]",
                "undefined",
            ];
            // `undefined` (last) only now and then: it agrees with no number.
            let len = leaf.len() - usize::from(!self.0.chance(10));
            return self.pick(&leaf[..len]).to_owned();
        }
        let d = depth - 1;
        match self.0.below(5) {
            0 | 1 => {
                let (l, r) = (self.number(d), self.number(d));
                let op = self.pick(&["+", "-", "*", "/", "%"]);
                format!("{} {op} {}", self.group(l), self.group(r))
            }
            2 => {
                let inner = self.number(d);
                format!("- {}", self.group(inner))
            }
            3 => {
                let arg = self.number(d);
                let f = self.pick(&["abs", "exp", "square", "ceiling", "floor", "sign", "sqrt"]);
                format!("{f}({arg})")
            }
            _ => {
                let arg = self.string(d);
                let f = self.pick(&["length", "as_number", "AS_NUMBER"]);
                format!("{f}({arg})")
            }
        }
    }

    fn string(&mut self, depth: usize) -> String {
        if depth == 0 {
            let leaf = [
                "'a'",
                "\"b\"",
                "alert",
                "$connectionDeviceId",
                "{$to}",
                "$body.unit",
                "'*/'",
            ];
            return self.pick(&leaf).to_owned();
        }
        let d = depth - 1;
        match self.0.below(4) {
            0 => {
                let (l, r) = (self.string(d), self.string(d));
                format!("{} || {}", self.group(l), self.group(r))
            }
            1 => {
                let (a, b, c) = (self.string(d), self.string(d), self.string(d));
                format!("concat({a}, {b}, {c})")
            }
            2 => {
                let (s, start) = (self.string(d), self.number(d));
                format!("substring({s}, {start})")
            }
            _ => {
                let arg = self.string(d);
                let f = self.pick(&["lower", "upper"]);
                format!("{f}({arg})")
            }
        }
    }

    fn route(&mut self) -> String {
        let source = self.pick(&[
            "/*",
            "/messages/*",
            "/messages",
            "/messages/modules/filter/outputs/*",
            "/messages/modules/filter/outputs/alerts",
            "/twinChangeNotifications",
        ]);
        let sink = self.pick(&[
            "$upstream",
            "$UPSTREAM",
            "BrokeredEndpoint(\"/modules/m/inputs/i\")",
            "brokeredendpoint('modules/m*/inputs/x/')",
        ]);
        let select = if self.0.chance(4) { "SELECT * " } else { "" };
        let depth = self.0.below(5);
        let condition = if self.0.chance(5) {
            String::new()
        } else {
            format!(" {} {}", self.keyword("WHERE"), self.boolean(depth))
        };
        format!(
            "{select}{} {source}{condition} {} {sink}",
            self.keyword("FROM"),
            self.keyword("INTO")
        )
    }
}

#[test]
fn structured_routes() {
    let mut routes = Routes(Rng::new(0x0007_2007_ed6e));
    let mut accepted = 0;
    for _ in 0..STRUCTURED {
        let text = routes.route();
        fuzz_route(text.as_bytes());
        if Route::parse("r", &text).is_ok() {
            accepted += 1;
        }
    }
    eprintln!("{accepted} of {STRUCTURED} structured routes compiled");
    assert!(
        accepted * 3 >= STRUCTURED,
        "generator too rarely valid: {accepted}"
    );
}

#[test]
fn pathological_inputs() {
    let condition = |c: &str| format!("FROM /messages WHERE {c} INTO $upstream");
    for input in [
        condition(&format!("{}true{}", "(".repeat(20_000), ")".repeat(20_000))),
        condition(&format!("{}true", "NOT ".repeat(20_000))),
        condition(&format!("{}1 = 1", "- ".repeat(20_000))),
        condition(&format!("1{} = 1", " + 1".repeat(5_000))),
        condition(&format!("a = 'x'{}", " OR a = 'y'".repeat(5_000))),
        condition(&format!(
            "{}true{}",
            "is_bool(".repeat(5_000),
            ")".repeat(5_000)
        )),
        condition(&format!("{}1{} = 1", "abs(".repeat(200), ")".repeat(200))),
        condition(&format!("'{}'", "\\".repeat(9_999))),
        condition(&format!("$body.{}", "a.".repeat(5_000))),
        format!("FROM {} INTO $upstream", "/a".repeat(10_000)),
        "/*".repeat(10_000),
        "'".repeat(10_000),
        "FROM /* WHERE ".repeat(2_000),
    ] {
        fuzz_route(input.as_bytes());
    }
    fuzz_route(&[0xff, 0xfe, b'/', b'*']);
}

//! Unit tests of the parser, the type checks and `Display` round trips.

use super::*;
use crate::route::{MAX_DEPTH, Route, RouteError};

fn route(text: &str) -> Route {
    Route::parse("r", text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn error(text: &str) -> RouteError {
    Route::parse("r", text).expect_err(text)
}

/// The kind and position of the error in `FROM /messages WHERE <condition> INTO $upstream`,
/// with the position counted from the start of the condition.
fn condition_error(condition: &str) -> (K, usize) {
    let e = error(&format!("FROM /messages WHERE {condition} INTO $upstream"));
    (e.kind, e.position - "FROM /messages WHERE ".len())
}

/// The canonical text of a condition.
fn canonical(condition: &str) -> String {
    let text = route(&format!("FROM /messages WHERE {condition} INTO $upstream")).to_string();
    text["FROM /messages WHERE ".len()..text.len() - " INTO $upstream".len()].to_owned()
}

fn round_trip(text: &str) {
    let first = route(text);
    let printed = first.to_string();
    let again = Route::parse("r", &printed).unwrap_or_else(|e| panic!("{printed:?}: {e}"));
    assert_eq!(again, first, "{text:?} printed as {printed:?}");
}

#[test]
fn documented_routes_parse() {
    for (text, canonical) in [
        (
            "FROM /messages/modules/SimulatedTemperatureSensor/outputs/temperatureOutput \
             INTO BrokeredEndpoint(\"/modules/filtermodule/inputs/input1\")",
            "FROM /messages/modules/SimulatedTemperatureSensor/outputs/temperatureOutput \
             INTO BrokeredEndpoint(\"/modules/filtermodule/inputs/input1\")",
        ),
        (
            "FROM /messages/* WHERE NOT IS_DEFINED($connectionModuleId) INTO $upstream",
            "FROM /messages/* WHERE NOT is_defined($connectionModuleId) INTO $upstream",
        ),
        (
            "FROM /messages/modules/filter/outputs/alerts WHERE $body.temp > 30 INTO $upstream",
            "FROM /messages/modules/filter/outputs/alerts WHERE $body.temp > 30 INTO $upstream",
        ),
        ("select * from /* into $UPSTREAM", "FROM /* INTO $upstream"),
        (
            "FROM /messages/modules/filtermodule/outputs/output1 INTO brokeredendpoint('/modules/m/inputs/i/')",
            "FROM /messages/modules/filtermodule/outputs/output1 INTO BrokeredEndpoint(\"/modules/m/inputs/i\")",
        ),
        (
            "FROM /twinChangeNotifications WHERE twin_change_includes(properties.desired.temp) INTO $upstream",
            "FROM /twinChangeNotifications WHERE twin_change_includes(properties.desired.temp) INTO $upstream",
        ),
    ] {
        assert_eq!(route(text).to_string(), canonical, "{text}");
        round_trip(text);
    }
}

#[test]
fn precedence_follows_the_grammar() {
    let cases = [
        (
            "a = 'x' OR b = 'y' AND c = 'z'",
            "a = 'x' OR b = 'y' AND c = 'z'",
        ),
        (
            "(a = 'x' OR b = 'y') AND c = 'z'",
            "(a = 'x' OR b = 'y') AND c = 'z'",
        ),
        ("1 + 2 * 3 = 7", "1 + 2 * 3 = 7"),
        ("(1 + 2) * 3 = 9", "(1 + 2) * 3 = 9"),
        ("1 - (2 - 3) = 2", "1 - (2 - 3) = 2"),
        ("((1 - 2)) - 3 = -4", "1 - 2 - 3 = -4"),
        ("1 < 2 = true", "1 < 2 = true"),
        ("true = (1 < 2)", "true = 1 < 2"),
        ("NOT (1 = 2)", "NOT (1 = 2)"),
        ("NOT NOT true", "NOT NOT true"),
        ("- (1 + 2) < 0", "- (1 + 2) < 0"),
        ("- -5 = 5", "- -5 = 5"),
        ("-5 = - 5", "-5 = - 5"),
        ("$body.a ?? 1 = 1", "$body.a ?? 1 = 1"),
        ("($body.a ?? 1) = 1", "($body.a ?? 1) = 1"),
        ("a || 'x' || {$to} = 'y'", "a || 'x' || {$to} = 'y'"),
        (
            "x = 'a' AND (y = 'b' AND z = 'c')",
            "x = 'a' AND y = 'b' AND z = 'c'",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(canonical(input), expected, "{input}");
    }
}

#[test]
fn and_or_are_flattened() {
    let r = route("FROM /* WHERE a = '1' OR (b = '2' OR c = '3') OR d = '4' INTO $upstream");
    let Some(Expr::Or(items)) = &r.condition else {
        panic!("{r:?}");
    };
    assert_eq!(items.len(), 4);
}

#[test]
fn literals_print_canonically() {
    let cases = [
        ("0x1F = 31", "31 = 31"),
        ("1.50 = 1.5", "1.5 = 1.5"),
        ("2e3 = 2000", "2000 = 2000"),
        ("1e300 > 1", "1e300 > 1"),
        ("1e999 > 1", "1e999 > 1"),
        ("e5 = undefined", "undefined = undefined"),
        ("\"it's\" = 'x'", r"'it\'s' = 'x'"),
        ("'*/' = 'x'", r"'\u002a/' = 'x'"),
        ("'line\nbreak' = 'x'", r"'line\u000abreak' = 'x'"),
    ];
    for (input, expected) in cases {
        assert_eq!(canonical(input), expected, "{input}");
    }
}

#[test]
fn properties_keep_their_spelling() {
    for text in [
        "alert-level = 'x'",
        "$body.a.b[0] = 1",
        "{$body.temp} > 1",
        "{$connectionDeviceId} = 'd'",
        "$x[0] = undefined",
        "IS_STRING(Device.Type)",
    ] {
        let printed = canonical(text);
        assert_eq!(canonical(&printed), printed, "{text}");
    }
    assert_eq!(
        canonical("IS_STRING(Device.Type)"),
        "is_string(Device.Type)"
    );
}

#[test]
fn round_trips() {
    for text in [
        "FROM /messages/modules/a*/outputs/x WHERE x = '*/' INTO BrokeredEndpoint(\"/modules/m*/inputs/i\")",
        "FROM /* WHERE x = '\\u002a/' INTO BrokeredEndpoint(\"/modules/m\\u002a/inputs/i\")",
        "FROM /messages/*/* INTO $upstream",
        "FROM / * WHERE concat(a, 'b', $body.c) = 'abc' INTO $upstream",
        "FROM /* WHERE substring(a, 1, 2) = 'b' AND index_of(a, 'c') >= 0 INTO $upstream",
        "FROM /* WHERE power(2, 3) = square(2) * 2 AND abs(-1) = sign(1) INTO $upstream",
        "FROM /* WHERE NOT null AND null OR undefined ?? true INTO $upstream",
        "FROM /* WHERE 'x' INTO $upstream",
        "FROM /* WHERE is_defined(undefined) INTO $upstream",
    ] {
        round_trip(text);
    }
}

#[test]
fn comments_are_skipped_even_when_they_surprise() {
    assert_eq!(
        route("FROM /messages/modules/m /* note */ INTO $upstream").to_string(),
        "FROM /messages/modules/m INTO $upstream"
    );
    // As in edgeHub, `/*` in a source opens a comment when a `*/` follows anywhere.
    assert_eq!(
        route("FROM /messages/* /* all */ INTO $upstream").to_string(),
        "FROM /messages INTO $upstream"
    );
    let e = error("FROM /* WHERE a = '*/' INTO $upstream");
    assert_eq!(e.kind, K::UnterminatedString);
}

#[test]
fn syntax_errors_point_at_the_token() {
    let cases = [
        ("", "expected SELECT or FROM, found end of route", 0),
        (
            "FROM",
            "expected a source path such as /messages/*, found end of route",
            4,
        ),
        (
            "FROM /messages/* $upstream",
            "expected WHERE or INTO, found property $upstream",
            17,
        ),
        (
            "FROM /messages/* WHERE a = 'b' $upstream",
            "expected INTO, found property $upstream",
            31,
        ),
        ("SELECT FROM /*", "expected '*', found 'FROM'", 7),
        (
            "FROM /* INTO",
            "expected $upstream or BrokeredEndpoint(\"...\"), found end of route",
            12,
        ),
        (
            "FROM /* INTO $upstream x",
            "expected end of route, found identifier \"x\"",
            23,
        ),
        (
            "FROM /true INTO $upstream",
            "expected a name or '*' after '/', found 'true'",
            6,
        ),
        (
            "FROM /* WHERE (a = 'b' INTO $upstream",
            "expected ')', found 'INTO'",
            23,
        ),
        (
            "FROM /* WHERE INTO $upstream",
            "expected an expression, found 'INTO'",
            14,
        ),
        (
            "FROM /* WHERE {a} INTO $upstream",
            "expected a $ property after '{', found identifier \"a\"",
            15,
        ),
    ];
    for (text, message, position) in cases {
        let e = error(text);
        assert_eq!(
            (e.kind.to_string().as_str(), e.position),
            (message, position),
            "{text}"
        );
    }
    assert_eq!(
        error("FROM /* WHERE a = 'b' $upstream").to_string(),
        "route \"r\": expected INTO, found property $upstream at 22"
    );
}

#[test]
fn type_errors_like_edgehub() {
    let cases = [
        (
            "temp > 30",
            "invalid operands to binary operator '>': have 'string' and 'number'",
            5,
        ),
        (
            "a = null",
            "invalid operands to binary operator '=': have 'string' and 'null'",
            2,
        ),
        (
            "1 = undefined",
            "invalid operands to binary operator '=': have 'number' and 'undefined'",
            2,
        ),
        (
            "a + 1 = 2",
            "invalid operands to binary operator '+': have 'string' and 'number'",
            2,
        ),
        (
            "1 || 'a' = 'a'",
            "invalid operands to binary operator '||': have 'number' and 'string'",
            2,
        ),
        (
            "a ?? 1",
            "invalid operands to binary operator '??': have 'string' and 'number'",
            2,
        ),
        (
            "NOT a = 'x'",
            "invalid operands to unary operator 'NOT': have 'string'",
            0,
        ),
        (
            "- a < 0",
            "invalid operands to unary operator '-': have 'string'",
            0,
        ),
        (
            "a AND true",
            "invalid operands to binary operator 'AND': have 'string' and 'bool'",
            2,
        ),
        (
            "true OR 1 = 1 OR 'x'",
            "invalid operands to binary operator 'OR': have 'bool' and 'string'",
            14,
        ),
        (
            "abs(a) > 1",
            "invalid arguments to built-in function 'abs': abs(string)",
            0,
        ),
        (
            "concat(a) = 'a'",
            "invalid arguments to built-in function 'concat': concat(string)",
            0,
        ),
        (
            "SUBSTRING(a, '1') = 'a'",
            "invalid arguments to built-in function 'substring': substring(string, string)",
            0,
        ),
        (
            "is_defined() ",
            "invalid arguments to built-in function 'is_defined': is_defined()",
            0,
        ),
        ("nope(a)", "invalid built-in function \"nope\"", 0),
        (
            "twin_change_includes(tags.x)",
            "twin_change_includes is only valid on routes FROM /twinChangeNotifications",
            0,
        ),
        ("$body. = 1", "invalid $body query \"\"", 0),
        ("$body.a[x] = 1", "invalid $body query \"a[x]\"", 0),
    ];
    for (condition, message, position) in cases {
        let (kind, at) = condition_error(condition);
        assert_eq!(
            (kind.to_string().as_str(), at),
            (message, position),
            "{condition}"
        );
    }
    assert!(Route::parse("r", "FROM /* WHERE as_number(temp) > 30 INTO $upstream").is_ok());
    assert!(Route::parse("r", "FROM /* WHERE $body.a + 1 > $body.b INTO $upstream").is_ok());
}

#[test]
fn twin_change_includes_paths() {
    let twin = |condition: &str| {
        Route::parse(
            "r",
            &format!("FROM /twinChangeNotifications WHERE {condition} INTO $upstream"),
        )
        .map_err(|e| e.kind.to_string())
    };
    assert!(twin("TWIN_CHANGE_INCLUDES(Properties.Reported.x)").is_ok());
    assert!(twin("twin_change_includes(tags.a.b) AND NOT twin_change_includes(tags.c)").is_ok());
    for bad in [
        "twin_change_includes(deviceId)",
        "twin_change_includes(tags.)",
        "twin_change_includes(tags..a)",
    ] {
        assert_eq!(
            twin(bad),
            Err(
                "twin_change_includes needs a path under properties.desired., \
                 properties.reported. or tags."
                    .to_owned()
            ),
            "{bad}"
        );
    }
    for bad in [
        "twin_change_includes('tags.a')",
        "twin_change_includes(tags.a, tags.b)",
        "twin_change_includes()",
    ] {
        assert_eq!(
            twin(bad),
            Err("twin_change_includes takes one twin path such as properties.desired.x".to_owned()),
            "{bad}"
        );
    }
}

#[test]
fn sinks() {
    let sink = |text: &str| Route::parse("r", &format!("FROM /* INTO {text}")).map(|r| r.sink);
    assert_eq!(sink("$Upstream"), Ok(Sink::Upstream));
    assert_eq!(
        sink("BrokeredEndpoint(\" /modules/filter/inputs/in1/ \")"),
        Ok(Sink::ModuleInput {
            module: ModuleId::parse("filter").unwrap(),
            input: "in1".into()
        })
    );
    assert_eq!(
        sink("BrokeredEndpoint('modules/m/inputs/i')").map(|s| s.to_string()),
        Ok("BrokeredEndpoint(\"/modules/m/inputs/i\")".to_owned())
    );
    let kind = |text: &str| sink(text).unwrap_err().kind.to_string();
    assert_eq!(
        kind("$edgeHub"),
        "system endpoint \"$edgeHub\" is not supported (only $upstream)"
    );
    assert_eq!(
        kind("Endpoint(\"x\")"),
        "function endpoint \"Endpoint\" is not supported (only BrokeredEndpoint)"
    );
    for bad in [
        "/modules/m/inputs",
        "/modules/m/inputs/i/x",
        "/modules/m/inputs//",
        "/modules/m/inputs/a+b",
        "",
    ] {
        assert_eq!(
            kind(&format!("BrokeredEndpoint(\"{bad}\")")),
            format!("BrokeredEndpoint address {bad:?} is not /modules/{{module}}/inputs/{{input}}"),
            "{bad}"
        );
    }
    let e = sink("BrokeredEndpoint(\"/modules/a b/inputs/i\")").unwrap_err();
    assert_eq!(
        (e.kind.to_string(), e.position),
        (
            "BrokeredEndpoint module \"a b\" is not a valid module ID".to_owned(),
            30
        )
    );
    assert!(std::error::Error::source(&e.kind).is_some());
    assert_eq!(
        kind("BrokeredEndpoint(x)"),
        "expected an address string, found identifier \"x\""
    );
}

#[test]
fn nesting_is_bounded() {
    let deep = |n: usize| {
        format!(
            "FROM /* WHERE {}true{} INTO $upstream",
            "(".repeat(n),
            ")".repeat(n)
        )
    };
    assert!(Route::parse("r", &deep(MAX_DEPTH - 1)).is_ok());
    for n in [MAX_DEPTH + 1, 20_000] {
        assert!(matches!(
            error(&deep(n)).kind,
            K::TooDeep { max: MAX_DEPTH }
        ));
    }
    let nots = format!("FROM /* WHERE {}true INTO $upstream", "NOT ".repeat(10_000));
    assert!(matches!(error(&nots).kind, K::TooDeep { .. }));
    let chain = format!("FROM /* WHERE 1{} = 1 INTO $upstream", " + 1".repeat(500));
    assert!(matches!(error(&chain).kind, K::TooDeep { .. }));
    let ors = format!(
        "FROM /* WHERE a = '0'{} INTO $upstream",
        " OR a = '1'".repeat(2_000)
    );
    assert!(Route::parse("r", &ors).is_ok());
}

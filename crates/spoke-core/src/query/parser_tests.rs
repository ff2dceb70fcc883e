//! Unit tests of the parser and of `Display` round trips.

use super::*;

fn query(text: &str) -> Query {
    parse_query(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn error(text: &str) -> QueryError {
    parse_query(text).expect_err(text)
}

fn condition(text: &str) -> Condition {
    parse_condition(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn path(segments: &[&str]) -> Path {
    Path(segments.iter().map(|s| (*s).to_owned()).collect())
}

#[test]
fn documented_queries_parse() {
    for text in [
        "SELECT * FROM devices",
        "SELECT * FROM devices WHERE tags.location.region = 'US'",
        "SELECT * FROM devices WHERE tags.location.region = 'US' \
         AND properties.reported.telemetryConfig.sendFrequencyInSecs >= 60",
        "SELECT * FROM devices WHERE properties.reported.connectivity IN ['wired', 'wifi']",
        "SELECT * FROM devices WHERE is_defined(properties.reported.connectivity)",
        "SELECT COUNT() AS numberOfDevices FROM devices",
        "SELECT COUNT() as totalNumberOfDevices FROM devices",
        "SELECT properties.reported.telemetryConfig.status AS status, COUNT() AS numberOfDevices \
         FROM devices GROUP BY properties.reported.telemetryConfig.status",
        "SELECT DeviceId, LastActivityTime FROM devices WHERE status = 'enabled' \
         AND connectionState = 'Disconnected'",
        "Select * from devices.modules where properties.reported.status = 'scanning' \
         and deviceId IN ['device1', 'device2']",
        "SELECT * FROM devices.jobs WHERE devices.jobs.deviceId = 'myDeviceId' \
         AND devices.jobs.createdTimeUtc > '2016-09-01'",
        "select deviceId from devices.modules where moduleId = '$edgeAgent' \
         and configurations.[[aaas-rpi-premium]].status = 'Applied'",
        "SELECT * FROM devices WHERE properties.desired.$version = \
         properties.reported.lastDesiredVersion AND properties.reported.lastDesiredStatus.code = 200",
        "SELECT TOP 5 * FROM devices",
        "SELECT TOP 0x10 deviceId FROM devices",
    ] {
        let parsed = query(text);
        assert_eq!(query(&parsed.to_string()), parsed, "{text}");
    }
}

#[test]
fn clause_structure() {
    let q = query("select top 3 tags.a as x, count() as n from DEVICES.Modules group by tags.a");
    assert_eq!(q.top, Some(3));
    assert_eq!(q.from, Collection::Modules);
    assert!(q.filter.expr.is_none());
    assert_eq!(q.group_by, vec![path(&["tags", "a"])]);
    assert_eq!(
        q.to_string(),
        "SELECT TOP 3 tags.a AS x, COUNT() AS n FROM devices.modules GROUP BY tags.a"
    );
}

#[test]
fn jobs_paths_lose_their_prefix() {
    let q = query(
        "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j' AND devices.jobs.select = 1",
    );
    assert_eq!(
        q.to_string(),
        "SELECT * FROM devices.jobs WHERE jobId = 'j' AND [[select]] = 1"
    );
    let twice =
        query("SELECT * FROM devices.jobs WHERE devices.jobs.devices.jobs.a = devices.jobs");
    assert_eq!(
        twice.to_string(),
        "SELECT * FROM devices.jobs WHERE a = devices.jobs"
    );
}

#[test]
fn precedence_and_flattening() {
    let c = condition("a = 1 OR b = 2 AND NOT c = 3 OR (d OR e)");
    let Some(Expr::Or(items)) = &c.expr else {
        panic!("{c:?}")
    };
    assert_eq!(items.len(), 4);
    assert!(matches!(&items[1], Expr::And(and) if matches!(and[1], Expr::Not(_))));
    assert_eq!(c.to_string(), "a = 1 OR b = 2 AND NOT c = 3 OR d OR e");
    assert_eq!(
        condition("a - (b - c) * -d").to_string(),
        "a - (b - c) * -d"
    );
    assert_eq!(condition("(a - b) - c").to_string(), "a - b - c");
    assert_eq!(condition("NOT (a AND b)").to_string(), "NOT (a AND b)");
    assert_eq!(
        condition("x IN [ [[a b]], [1]]").to_string(),
        "x IN [ [[a b]], [1]]"
    );
    assert_eq!(condition("x nin [ [1] ]").to_string(), "x NIN [ [1]]");
    assert_eq!(
        condition("starts_with(s, \"it's\")").to_string(),
        "STARTSWITH(s, 'it\\'s')"
    );
    assert_eq!(
        condition("n = 1e300 OR n = 0.5 OR n = 2.0").to_string(),
        "n = 1e300 OR n = 0.5 OR n = 2"
    );
    assert_eq!(condition("  * ").to_string(), "*");
}

#[test]
fn errors_carry_positions() {
    let cases: [(&str, usize, K); 12] = [
        (
            "SELECT * FROM things",
            14,
            K::UnknownCollection("things".to_owned()),
        ),
        (
            "SELECT * FROM devices.twins",
            14,
            K::UnknownCollection("devices.twins".to_owned()),
        ),
        (
            "SELECT * FROM devices WHERE COUNT() = 1",
            28,
            K::AggregateOutsideSelect("COUNT".to_owned()),
        ),
        (
            "SELECT * FROM devices WHERE nope(x)",
            28,
            K::UnknownFunction("nope".to_owned()),
        ),
        (
            "SELECT * FROM devices WHERE is_defined(a, b)",
            28,
            K::Arity {
                name: "is_defined".to_owned(),
                expected: 1,
                got: 2,
            },
        ),
        ("SELECT TOP -1 * FROM devices", 11, K::InvalidTop),
        ("SELECT TOP 1.5 * FROM devices", 11, K::InvalidTop),
        (
            "SELECT a.x, b.X FROM devices",
            12,
            K::DuplicateName("X".to_owned()),
        ),
        (
            "SELECT deviceId, COUNT() AS n FROM devices",
            7,
            K::NotGrouped("deviceId".to_owned()),
        ),
        (
            "SELECT * FROM devices GROUP BY tags.a",
            22,
            K::StarWithGroupBy,
        ),
        ("SELECT deviceId FROM devices.jobs", 7, K::JobsProjection),
        (
            "SELECT * FROM devices.jobs GROUP BY jobId",
            7,
            K::JobsProjection,
        ),
    ];
    for (text, position, kind) in cases {
        assert_eq!(error(text), QueryError { position, kind }, "{text}");
    }
    let e = error("SELECT * FROM devices WHERE");
    assert_eq!(e.position, 27);
    assert_eq!(
        e.to_string(),
        "expected expression, found end of query at position 27"
    );
    assert!(matches!(
        error("SELECT * devices").kind,
        K::Expected {
            expected: "FROM or ','",
            ..
        }
    ));
    assert!(matches!(
        error("SELECT * FROM devices x").kind,
        K::Expected { .. }
    ));
    assert!(matches!(
        error("SELECT COUNT(x) FROM devices").kind,
        K::Expected { .. }
    ));
    assert!(matches!(
        error("SELECT is_defined(x) FROM devices").kind,
        K::Expected { .. }
    ));
}

#[test]
fn unnamed_aggregates_are_numbered() {
    let q = query("SELECT COUNT(), MAX(tags.a), MIN(tags.a) AS m FROM devices");
    let SelectList::Items(items) = &q.select else {
        panic!()
    };
    assert_eq!(SelectItem::declared_names(items), ["$1", "$2", "m"]);
    assert_eq!(
        error("SELECT COUNT(), SUM(x) AS [[$1]] FROM devices").kind,
        K::Expected {
            expected: "alias name",
            found: "path segment [[$1]]".to_owned()
        }
    );
    assert_eq!(
        error("SELECT COUNT(), SUM(x) AS $1 FROM devices").kind,
        K::DuplicateName("$1".to_owned())
    );
}

#[test]
fn targets() {
    assert_eq!(
        parse_target("*").unwrap(),
        (Collection::Devices, Condition { expr: None })
    );
    let (from, c) = parse_target("from devices.modules where tags.b = 1").unwrap();
    assert_eq!(
        (from, c.to_string()),
        (Collection::Modules, "tags.b = 1".to_owned())
    );
    assert_eq!(
        parse_target("FROM devices.jobs WHERE x = 1")
            .unwrap_err()
            .kind,
        K::JobsTarget
    );
    assert!(parse_condition("FROM devices WHERE x = 1").is_err());
}

#[test]
fn limits() {
    let long = format!("x = '{}'", "a".repeat(MAX_QUERY_LEN));
    assert_eq!(
        parse_condition(&long).unwrap_err().kind,
        K::TooLong { max: MAX_QUERY_LEN }
    );
    for deep in [
        format!("{}x{}", "(".repeat(5000), ")".repeat(5000)),
        format!("{}x", "NOT ".repeat(1500)),
        format!("{}x", "-".repeat(5000)),
        format!("{}x{}", "[ ".repeat(3000), "]".repeat(3000)),
        format!("{}x{}", "is_null(".repeat(800), ")".repeat(800)),
        format!("x{}", " + x".repeat(1000)),
        format!("x{}", " = x".repeat(1000)),
    ] {
        let kind = parse_condition(&deep).unwrap_err().kind;
        assert!(
            matches!(kind, K::TooDeep { max: MAX_DEPTH } | K::TooLong { .. }),
            "{kind:?}"
        );
    }
    // Long AND/OR chains are flat, so they are not "deep".
    let wide = format!("x = 0{}", " OR x = 1".repeat(800));
    assert!(parse_condition(&wide).is_ok());
    let nested = format!(
        "{}x{}",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    assert!(parse_condition(&nested).is_ok());
}

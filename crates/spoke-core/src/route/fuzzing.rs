//! Fuzz entry point for the route language (STYLE.md §10).
//!
//! `fuzz_route` must never panic on any input. It asserts the properties the module
//! promises: the `Display` text of a parsed route parses back to an equal route, and a
//! parsed route evaluates against assorted messages from every kind of source, alone and in a
//! [`RouteTable`] whose destinations name each sink once and include the route's sink
//! whenever the route matches.

use std::sync::LazyLock;

use super::{MessageSource, Route, RouteTable};
use crate::message::Message;

/// Messages with the shapes conditions usually touch: JSON bodies in each encoding, a body
/// that is not JSON, null-valued and case-varied properties.
static MESSAGES: LazyLock<Vec<Message>> = LazyLock::new(|| {
    let json = r#"{"temp": 31.5, "unit": "C", "on": true, "none": null, "a": {"b": [1, "x"]}}"#;
    let utf16: Vec<u8> = json.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let bags = [
        "%24.ct=application%2Fjson&%24.ce=utf-8&%24.cdid=dev1&%24.cmid=filter&%24.on=alerts&temp=30&Alert=true",
        "%24.ct=APPLICATION%2FJSON&%24.ce=UTF-16&%24.mid=m1&%24.schema=s&%24.inputName=in1&flag",
        "%24.ct=text%2Fplain&%24.ce=utf-8&%24body.temp=5&%24connectionDeviceId=spoofed",
        "",
    ];
    let bodies: [&[u8]; 4] = [
        json.as_bytes(),
        &utf16,
        b"not json",
        b"{\"properties\":{\"desired\":{\"x\":1}},\"tags\":{\"t\":null}}",
    ];
    bags.iter()
        .zip(bodies)
        .filter_map(|(bag, body)| Message::from_property_bag(body, bag).ok())
        .collect()
});

static SOURCES: LazyLock<Vec<MessageSource>> = LazyLock::new(|| {
    vec![
        MessageSource::Telemetry,
        MessageSource::Module {
            module: "filter".to_owned(),
        },
        MessageSource::ModuleOutput {
            module: "filter".to_owned(),
            output: "alerts".to_owned(),
        },
        MessageSource::TwinChangeNotification,
    ]
});

/// Parses `data` as a route and checks the round trip and evaluation.
pub fn fuzz_route(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(route) = Route::parse("fuzz", text) else {
        return;
    };
    let printed = route.to_string();
    match Route::parse("fuzz", &printed) {
        Ok(again) => assert_eq!(again, route, "round trip of {text:?} through {printed:?}"),
        Err(e) => panic!("printed form {printed:?} of {text:?} does not parse: {e}"),
    }
    let other = Route::parse(
        "other",
        "FROM /messages/* WHERE is_defined($body.temp) INTO $upstream",
    )
    .expect("fixed route compiles");
    let table = RouteTable::from_routes(vec![route.clone(), other]);
    for msg in MESSAGES.iter() {
        for source in SOURCES.iter() {
            let destinations = table.destinations(source, msg);
            assert!(destinations.len() <= 2);
            assert!(
                destinations.windows(2).all(|w| w[0].sink < w[1].sink),
                "sinks listed once, in order: {destinations:?}"
            );
            if route.matches(source, msg) {
                assert!(destinations.iter().any(|d| d.sink == route.sink));
            }
        }
    }
}

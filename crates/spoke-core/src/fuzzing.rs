//! Fuzz entry points for the parsers of this crate. Each takes arbitrary bytes, must never
//! panic, and asserts the round-trip invariant of its parser. `fuzz/` wraps them in
//! `fuzz_target!`s; `tests/fuzz_smoke_basics.rs` runs them over the committed corpus and
//! seeded random inputs.

use crate::connstr::ConnectionString;
use crate::ids::{DeviceId, Identity, ModuleId};
use crate::message::{decode_property_bag, encode_property_bag};
use crate::sas::SasToken;
use crate::topic::{self, DeviceTopic, Subscription};

/// Connection strings: a parsed value formats to a string that parses back to it.
pub fn fuzz_connection_string(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cs) = ConnectionString::parse(text) {
        let formatted = cs.to_string();
        assert_eq!(
            ConnectionString::parse(&formatted).as_ref(),
            Ok(&cs),
            "{formatted}"
        );
        let _ = cs.identity();
    }
}

/// SAS tokens: a parsed token formats to one that parses back to it; verification and scope
/// extraction never panic.
pub fn fuzz_sas_token(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = SasToken::parse(text) {
        let formatted = token.to_string();
        assert_eq!(
            SasToken::parse(&formatted).as_ref(),
            Ok(&token),
            "{formatted}"
        );
        let _ = token.verify(b"fuzz-key", 1_700_000_000);
        if let Ok(resource) = token.resource() {
            let path: Vec<&str> = resource.path.iter().map(String::as_str).collect();
            assert!(resource.covers(&resource.host, &path));
        }
    }
}

/// Property bags: decode, and if that succeeds, encode and decode again to the same value.
pub fn fuzz_property_bag(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((system, app)) = decode_property_bag(text) {
        let encoded = encode_property_bag(&system, &app);
        let again = decode_property_bag(&encoded);
        assert_eq!(again.as_ref(), Ok(&(system, app)), "{encoded}");
    }
}

/// Topics: parsed device topics format back to themselves; subscription classification never
/// panics, and a filter classified for an identity is the SDK's filter or an equivalent one.
pub fn fuzz_topic(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(topic) = DeviceTopic::parse(text) {
        let formatted = topic.to_string();
        assert_eq!(
            DeviceTopic::parse(&formatted).as_ref(),
            Ok(&topic),
            "{formatted}"
        );
    }
    let (Ok(device), Ok(module)) = (DeviceId::parse("dev1"), ModuleId::parse("mod1")) else {
        return;
    };
    for identity in [
        Identity::device(device.clone()),
        Identity::module(device, module),
    ] {
        if let Some(sub) = Subscription::classify(&identity, text) {
            assert!(
                sub.sdk_filter(&identity).is_some()
                    || (sub == Subscription::EdgeModules && text.starts_with("$iothub/modules/")),
                "{sub:?} for {identity}"
            );
        }
    }
    if let Ok(Some((module, inner))) = topic::split_module_scope(text) {
        assert_eq!(topic::module_scoped(&module, &inner), text);
    }
}

//! Fuzz entry points (the `fuzz/` target `sdk_hub_topic` and `tests/fuzz_smoke.rs`). They
//! must never panic; they assert round-trip properties.

use spoke_core::ids::{DeviceId, Identity, ModuleId};

use crate::topics::HubTopic;

/// Parses `data` as a topic received by a device and by a module; every parsed topic formats
/// to a topic that parses back to it (the [`crate::topics`] invariant).
pub fn fuzz_hub_topic(data: &[u8]) {
    let Ok(topic) = std::str::from_utf8(data) else {
        return;
    };
    let device = DeviceId::parse("dev1").expect("valid device id");
    let module = ModuleId::parse("mod1").expect("valid module id");
    for identity in [
        Identity::device(device.clone()),
        Identity::module(device, module),
    ] {
        if let Ok(parsed) = HubTopic::parse(topic, &identity) {
            let formatted = parsed.to_topic(&identity);
            assert_eq!(
                HubTopic::parse(&formatted, &identity),
                Ok(parsed),
                "{topic:?} formatted as {formatted:?}"
            );
        }
    }
}

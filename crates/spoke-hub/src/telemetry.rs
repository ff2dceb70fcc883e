//! Telemetry (device-to-cloud) events: what the hub stamps on a message and how it is stored in
//! the built-in events log and shown to consumers.
//!
//! Stored record: `u32` big-endian length of a JSON header, the header, then the raw body. The
//! header carries the sender's identity, the property bag as received, and the stamps. The log
//! assigns the offset (shown as `x-opt-sequence-number` / `x-opt-offset`).
//!
//! Consumers see the shape of `az iot hub monitor-events --props all --output json`
//! (ARCHITECTURE.md contracts): `{"event": {"origin", "module", "interface", "component",
//! "properties": {"system", "application"}, "annotations", "payload"}}`.

use bytes::{BufMut as _, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use spoke_core::message::{Message, properties_to_json};

/// Largest telemetry message (IoT Hub: 256 KB).
pub const MAX_MESSAGE_SIZE: usize = 256 * 1024;

/// The JSON header of a stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventHeader {
    /// `iothub-connection-device-id`.
    #[serde(rename = "d")]
    pub device_id: String,
    /// `iothub-connection-module-id`, if a module sent it.
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub module_id: Option<String>,
    /// `iothub-connection-auth-generation-id`.
    #[serde(rename = "g")]
    pub generation_id: String,
    /// `sas` or `x509` (for `iothub-connection-auth-method`).
    #[serde(rename = "a")]
    pub auth_type: String,
    /// `iothub-enqueuedtime`, ms since the Unix epoch.
    #[serde(rename = "t")]
    pub enqueued_ms: i64,
    /// The property bag as the device sent it (percent-encoded).
    #[serde(rename = "p")]
    pub bag: String,
    /// `iothub-MessageType=Will` when the event is a client's will message.
    #[serde(rename = "w", default, skip_serializing_if = "std::ops::Not::not")]
    pub will: bool,
}

/// Why a stored record cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    /// Shorter than its header length says.
    #[error("event record is truncated")]
    Truncated,
    /// The header is not the JSON we wrote.
    #[error("event header is not valid")]
    Header(#[from] serde_json::Error),
}

/// Encodes a stored record.
pub fn encode(header: &EventHeader, body: &[u8]) -> Bytes {
    let head = serde_json::to_vec(header).unwrap_or_default();
    let mut out = BytesMut::with_capacity(4 + head.len() + body.len());
    out.put_u32(head.len() as u32);
    out.put_slice(&head);
    out.put_slice(body);
    out.freeze()
}

/// Decodes a stored record into its header and body.
pub fn decode(record: &[u8]) -> Result<(EventHeader, &[u8]), EventDecodeError> {
    let len_bytes: [u8; 4] = record
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or(EventDecodeError::Truncated)?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    let head = record.get(4..4 + len).ok_or(EventDecodeError::Truncated)?;
    let header = serde_json::from_slice(head)?;
    Ok((header, &record[4 + len..]))
}

/// The `az iot hub monitor-events` JSON of a stored event at `offset`.
pub fn to_az_json(header: &EventHeader, body: &[u8], offset: u64) -> Value {
    let message = Message::from_property_bag(body.to_vec(), &header.bag).unwrap_or_default();
    let scope = if header.module_id.is_some() {
        "module"
    } else {
        "device"
    };
    let auth_method = json!({
        "scope": scope,
        "type": header.auth_type,
        "issuer": "iothub",
        "acceptingIpFilterRule": null,
    })
    .to_string();
    let mut annotations = Map::new();
    annotations.insert(
        "iothub-connection-device-id".into(),
        header.device_id.clone().into(),
    );
    if let Some(m) = &header.module_id {
        annotations.insert("iothub-connection-module-id".into(), m.clone().into());
    }
    annotations.insert("iothub-connection-auth-method".into(), auth_method.into());
    annotations.insert(
        "iothub-connection-auth-generation-id".into(),
        header.generation_id.clone().into(),
    );
    annotations.insert("iothub-enqueuedtime".into(), header.enqueued_ms.into());
    annotations.insert("iothub-message-source".into(), "Telemetry".into());
    if header.will {
        annotations.insert("iothub-MessageType".into(), "Will".into());
    }
    if let Some(on) = &message.system.output_name {
        annotations.insert("iothub-outputname".into(), on.clone().into());
    }
    annotations.insert("x-opt-sequence-number".into(), offset.into());
    annotations.insert("x-opt-offset".into(), offset.to_string().into());
    annotations.insert("x-opt-enqueued-time".into(), header.enqueued_ms.into());
    let payload = payload_json(&message.body);
    json!({
        "event": {
            "origin": header.device_id,
            "module": header.module_id.clone().unwrap_or_default(),
            "interface": message.system.interface_id.clone().unwrap_or_default(),
            "component": "",
            "properties": {
                "system": Value::Object(message.system.to_az_json()),
                "application": Value::Object(properties_to_json(&message.app)),
            },
            "annotations": Value::Object(annotations),
            "payload": payload,
        }
    })
}

/// The parsed JSON body when it parses, else the text (lossy UTF-8), as az prints it.
fn payload_json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> EventHeader {
        EventHeader {
            device_id: "dev1".into(),
            module_id: None,
            generation_id: "g1".into(),
            auth_type: "sas".into(),
            enqueued_ms: 1_700_000_000_000,
            bag: "%24.mid=mid1&%24.ct=application%2Fjson&alert=true&prop%20a=v%2F1".into(),
            will: false,
        }
    }

    #[test]
    fn record_round_trips() {
        let h = header();
        let record = encode(&h, b"{\"t\":1}");
        let (back, body) = decode(&record).unwrap();
        assert_eq!(back, h);
        assert_eq!(body, b"{\"t\":1}");
        assert!(decode(&record[..3]).is_err());
        assert!(decode(&record[..10]).is_err());
    }

    #[test]
    fn az_json_has_the_monitor_events_shape() {
        let v = to_az_json(&header(), b"{\"t\":1}", 7);
        let e = &v["event"];
        assert_eq!(e["origin"], "dev1");
        assert_eq!(e["module"], "");
        assert_eq!(e["payload"]["t"], 1);
        assert_eq!(e["properties"]["system"]["message_id"], "mid1");
        assert_eq!(
            e["properties"]["system"]["content_type"],
            "application/json"
        );
        assert_eq!(e["properties"]["application"]["prop a"], "v/1");
        assert_eq!(e["annotations"]["iothub-connection-device-id"], "dev1");
        assert_eq!(e["annotations"]["iothub-message-source"], "Telemetry");
        assert_eq!(e["annotations"]["x-opt-sequence-number"], 7);
        let text = to_az_json(&header(), b"plain string", 8);
        assert_eq!(text["event"]["payload"], "plain string");
    }
}

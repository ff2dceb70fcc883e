//! Fuzz entry point for the workload API's request handling (routing, `api-version`, bodies).
//! `fuzz/` wraps it in a `fuzz_target!`; `tests/workload_fuzz_smoke.rs` runs it over the
//! corpus in `fuzz/corpus/workload_request/` and over seeded random inputs.

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper::{Method, StatusCode};
use spoke_core::ids::{DeviceId, ModuleId};
use spoke_core::pki::CertificateAuthority;
use time::OffsetDateTime;

use super::api::{Caller, Request, Workload};
use super::{CallerCheck, KeyStore, MasterKey, TrustConfig, WorkloadConfig};

/// The module every fuzz request comes from.
const MODULE: &str = "$edgeHub";
/// The PID the fuzz caller check accepts.
const PID: u32 = 4242;

struct FixedKey;

impl KeyStore for FixedKey {
    fn module_key(&self, _module: &ModuleId) -> Option<Vec<u8>> {
        Some(b"fuzz module key".to_vec())
    }
}

struct OnePid;

impl CallerCheck for OnePid {
    fn is_module_process(&self, _module: &ModuleId, pid: u32) -> bool {
        pid == PID
    }
}

fn workload() -> &'static Workload {
    static CORE: OnceLock<Workload> = OnceLock::new();
    CORE.get_or_init(|| {
        let now = OffsetDateTime::now_utc();
        let ca = CertificateAuthority::generate("fuzz edge CA", now, time::Duration::days(1))
            .expect("CA generation");
        let config = WorkloadConfig::new(
            "/nonexistent".into(),
            "hub.fuzz".into(),
            DeviceId::parse("edge").expect("device id"),
            TrustConfig {
                edge_ca: ca,
                trust_bundle: None,
                manifest_trust_bundle: None,
            },
            MasterKey::from_bytes([3; 32]),
        );
        Workload::new(&config, Arc::new(FixedKey), Arc::new(OnePid))
    })
}

/// Workload requests: the first line is `METHOD PATH[?QUERY]`, the rest is the body. The
/// reply must be a JSON object with a `message` on errors, with one of the documented
/// statuses; a successful `encrypt` must `decrypt` back to its plaintext.
pub fn fuzz_workload_request(data: &[u8]) {
    let (head, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(head) = std::str::from_utf8(head) else {
        return;
    };
    let (method, target) = head.split_once(' ').unwrap_or((head, "/"));
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let module = ModuleId::parse(MODULE).expect("module id");
    let caller = Caller {
        module: &module,
        pid: Some(PID),
    };
    let now = OffsetDateTime::now_utc();
    let request = Request {
        method: &method,
        path,
        query,
        body,
    };
    let reply = workload().handle(caller, request, now);
    let json: serde_json::Value = serde_json::from_slice(&reply.body).expect("reply is JSON");
    assert!(json.is_object(), "{json}");
    match reply.status.as_u16() {
        200 | 201 => {}
        400 | 403 | 404 | 405 | 500 => assert!(json["message"].is_string(), "{json}"),
        other => panic!("unexpected status {other}"),
    }
    let is_encrypt = path.ends_with("/encrypt");
    if is_encrypt && reply.status == StatusCode::OK {
        let request: serde_json::Value = serde_json::from_slice(body).expect("accepted body");
        let decrypt_body = serde_json::json!({
            "ciphertext": json["ciphertext"],
            "initializationVector": request["initializationVector"],
        })
        .to_string();
        let decrypt_path = path.replace("/encrypt", "/decrypt");
        let opened = workload().handle(
            caller,
            Request {
                method: &method,
                path: &decrypt_path,
                query,
                body: decrypt_body.as_bytes(),
            },
            now,
        );
        assert_eq!(opened.status, StatusCode::OK);
        let opened: serde_json::Value = serde_json::from_slice(&opened.body).expect("JSON");
        let plaintext = opened["plaintext"].as_str().expect("plaintext");
        let original = request["plaintext"].as_str().expect("plaintext");
        assert_eq!(
            BASE64.decode(plaintext).ok(),
            BASE64.decode(original).ok(),
            "decrypt(encrypt(x)) != x"
        );
    }
}

use std::sync::Arc;

use serde_json::{Value, json};
use spoke_core::pki::CertificateAuthority;

use super::*;

const PID: u32 = 77;

struct Keys;

impl KeyStore for Keys {
    fn module_key(&self, module: &ModuleId) -> Option<Vec<u8>> {
        (module.as_str() != "keyless").then(|| format!("key of {module}").into_bytes())
    }
}

struct Pids;

impl CallerCheck for Pids {
    fn is_module_process(&self, _module: &ModuleId, pid: u32) -> bool {
        pid == PID
    }
}

fn trust(extra: Option<&str>) -> TrustConfig {
    let now = OffsetDateTime::now_utc();
    TrustConfig {
        edge_ca: CertificateAuthority::generate("edge CA", now, time::Duration::days(2)).unwrap(),
        trust_bundle: extra.map(str::to_owned),
        manifest_trust_bundle: None,
    }
}

fn core() -> Workload {
    core_with(Arc::new(Pids))
}

fn core_with(callers: Arc<dyn CallerCheck>) -> Workload {
    let config = WorkloadConfig::new(
        "/unused".into(),
        "hub.example".into(),
        DeviceId::parse("edge1").unwrap(),
        trust(None),
        MasterKey::from_bytes([5; 32]),
    );
    Workload::new(&config, Arc::new(Keys), callers)
}

fn call(
    core: &Workload,
    module: &str,
    pid: u32,
    method: &Method,
    target: &str,
    body: &str,
) -> (u16, Value) {
    let module = ModuleId::parse(module).unwrap();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let reply = core.handle(
        Caller {
            module: &module,
            pid: Some(pid),
        },
        Request {
            method,
            path,
            query,
            body: body.as_bytes(),
        },
        OffsetDateTime::now_utc(),
    );
    (
        reply.status.as_u16(),
        serde_json::from_slice(&reply.body).unwrap(),
    )
}

#[test]
fn every_documented_api_version_parses_and_others_do_not() {
    for v in ApiVersion::ALL {
        assert_eq!(ApiVersion::parse(v.as_str()), Some(v));
        let query = format!("api-version={}", v.as_str());
        assert_eq!(ApiVersion::from_query(Some(&query)).unwrap(), v);
    }
    assert_eq!(
        ApiVersion::from_query(Some("x=1&api%2Dversion=2020%2D07%2D07&api-version=bad")).unwrap(),
        ApiVersion::V2020_07_07
    );
    assert!(matches!(
        ApiVersion::from_query(None),
        Err(ApiError::MissingApiVersion)
    ));
    assert!(matches!(
        ApiVersion::from_query(Some("api-version")),
        Err(ApiError::UnsupportedApiVersion(v)) if v.is_empty()
    ));
    assert!(matches!(
        ApiVersion::from_query(Some("api-version=2023-01-01")),
        Err(ApiError::UnsupportedApiVersion(_))
    ));
}

#[test]
fn routes_decode_the_module_and_check_the_method() {
    let post = Method::POST;
    assert_eq!(
        Route::parse(&post, "/modules/%24edgeHub/genid/123/sign").unwrap(),
        Route::Sign("$edgeHub".into())
    );
    assert_eq!(
        Route::parse(&post, "/modules/m/genid/g/certificate/server").unwrap(),
        Route::ServerCertificate("m".into())
    );
    assert_eq!(
        Route::parse(&post, "/modules/m/certificate/identity").unwrap(),
        Route::IdentityCertificate("m".into())
    );
    assert_eq!(
        Route::parse(&Method::GET, "/trust-bundle").unwrap(),
        Route::TrustBundle
    );
    assert!(matches!(
        Route::parse(&Method::GET, "/modules/m/genid/g/sign"),
        Err(ApiError::MethodNotAllowed { .. })
    ));
    for path in [
        "",
        "trust-bundle",
        "/trust-bundle/",
        "/modules/m/genid/sign",
        "/modules",
    ] {
        assert!(
            matches!(Route::parse(&post, path), Err(ApiError::NotFound { .. })),
            "{path}"
        );
    }
}

/// Module `filter`'s process [`PID`], recorded only when the test says so.
#[derive(Default)]
struct LatePids {
    recorded: std::sync::atomic::AtomicBool,
    changes: tokio::sync::Notify,
}

impl CallerCheck for LatePids {
    fn is_module_process(&self, _module: &ModuleId, pid: u32) -> bool {
        pid == PID && self.recorded.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn changes(&self) -> Option<&tokio::sync::Notify> {
        Some(&self.changes)
    }
}

/// A module may call before the runtime has recorded its PID: the call waits for the record
/// (not for the whole grace), and a caller never recorded is refused after the grace.
#[tokio::test(start_paused = true)]
async fn a_caller_recorded_late_is_waited_for() {
    let pids = Arc::new(LatePids::default());
    let core = Arc::new(core_with(pids.clone()));
    let filter = ModuleId::parse("filter").unwrap();
    let start = tokio::time::Instant::now();
    let waiting = tokio::spawn({
        let (core, filter) = (core.clone(), filter.clone());
        async move { core.await_caller(&filter, PID).await }
    });
    tokio::task::yield_now().await;
    tokio::time::advance(std::time::Duration::from_millis(300)).await;
    pids.recorded
        .store(true, std::sync::atomic::Ordering::SeqCst);
    pids.changes.notify_waiters();
    waiting.await.unwrap();
    assert_eq!(start.elapsed(), std::time::Duration::from_millis(300));
    assert_eq!(
        call(
            &core,
            "filter",
            PID,
            &Method::GET,
            "/trust-bundle?api-version=2019-01-30",
            ""
        )
        .0,
        200
    );

    let start = tokio::time::Instant::now();
    core.await_caller(&filter, PID + 1).await;
    assert_eq!(start.elapsed(), CALLER_GRACE);
    assert_eq!(
        call(
            &core,
            "filter",
            PID + 1,
            &Method::GET,
            "/trust-bundle?api-version=2019-01-30",
            ""
        )
        .0,
        403
    );
}

#[test]
fn foreign_processes_learn_nothing() {
    let core = core();
    let (status, body) = call(&core, "filter", PID + 1, &Method::GET, "/nowhere", "");
    assert_eq!(status, 403);
    assert_eq!(
        body["message"],
        "the caller is not a process of module filter"
    );
}

#[test]
fn checks_run_in_order() {
    let core = core();
    let sign = r#"{"data":"aGk="}"#;
    let (status, _) = call(
        &core,
        "filter",
        PID,
        &Method::POST,
        "/modules/other/genid/1/sign",
        sign,
    );
    assert_eq!(status, 400, "api-version is checked before the module");
    let target = "/modules/other/genid/1/sign?api-version=2022-08-03";
    let (status, body) = call(&core, "filter", PID, &Method::POST, target, sign);
    assert_eq!(status, 403);
    assert!(body["message"].as_str().unwrap().contains("\"other\""));
    let target = "/modules/filter/genid/1/sign?api-version=2022-08-03";
    assert_eq!(
        call(&core, "filter", PID, &Method::POST, target, "{").0,
        400
    );
    assert_eq!(
        call(
            &core,
            "filter",
            PID,
            &Method::POST,
            target,
            r#"{"data":"!"}"#
        )
        .0,
        400
    );
    assert_eq!(
        call(
            &core,
            "keyless",
            PID,
            &Method::POST,
            &target.replace("filter", "keyless"),
            sign
        )
        .0,
        404
    );
}

#[test]
fn sign_uses_the_module_key_and_dollar_is_optional() {
    let core = core();
    let expected = BASE64.encode(crypto::sign(b"key of $edgeHub", b"hi"));
    for module in ["%24edgeHub", "$edgeHub", "edgeHub"] {
        let target = format!("/modules/{module}/genid/1/sign?api-version=2018-06-28");
        let (status, body) = call(
            &core,
            "$edgeHub",
            PID,
            &Method::POST,
            &target,
            r#"{"keyId":"primary","algo":"HMACSHA256","data":"aGk="}"#,
        );
        assert_eq!(
            (status, body["digest"].as_str()),
            (200, Some(expected.as_str())),
            "{module}"
        );
    }
}

#[test]
fn trust_bundles_and_replacement() {
    let core = core();
    let (status, body) = call(
        &core,
        "m",
        PID,
        &Method::GET,
        "/manifest-trust-bundle?api-version=2019-01-30",
        "",
    );
    assert_eq!((status, body), (200, json!({"certificate": ""})));
    let extra = trust(None).edge_ca.cert_pem;
    let renewed = trust(Some(&extra));
    let ca_pem = renewed.edge_ca.cert_pem.clone();
    core.replace_trust(renewed);
    let (_, body) = call(
        &core,
        "m",
        PID,
        &Method::GET,
        "/trust-bundle?api-version=2019-01-30",
        "",
    );
    assert_eq!(body["certificate"], format!("{ca_pem}{extra}"));
}

#[test]
fn certificates_are_201_with_the_azure_shape() {
    let core = core();
    let target = "/modules/m/genid/1/certificate/server?api-version=2020-07-07";
    let (status, body) = call(
        &core,
        "m",
        PID,
        &Method::POST,
        target,
        r#"{"commonName":"edge.local","expiration":"2030-01-01T00:00:00Z"}"#,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["privateKey"]["type"], "key");
    assert!(
        body["privateKey"]["bytes"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert_eq!(
        body["certificate"]
            .as_str()
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
    let expiration = body["expiration"].as_str().unwrap();
    assert!(expiration.ends_with("+00:00"), "{expiration}");
    OffsetDateTime::parse(expiration, &time::format_description::well_known::Rfc3339).unwrap();
    for bad in [r#"{"commonName":""}"#, r#"{"commonName":"a b"}"#, "{}"] {
        assert_eq!(
            call(&core, "m", PID, &Method::POST, target, bad).0,
            400,
            "{bad}"
        );
    }
    let long = format!(r#"{{"commonName":"{}"}}"#, "a".repeat(65));
    assert_eq!(call(&core, "m", PID, &Method::POST, target, &long).0, 400);
    let target = "/modules/m/certificate/identity?api-version=2020-07-07";
    assert_eq!(call(&core, "m", PID, &Method::POST, target, "").0, 201);
}

#[test]
fn decrypt_rejects_bad_input_with_400() {
    let core = core();
    let target = "/modules/m/genid/1/decrypt?api-version=2021-12-07";
    let (status, body) = call(
        &core,
        "m",
        PID,
        &Method::POST,
        target,
        r#"{"ciphertext":"AAAA","initializationVector":""}"#,
    );
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot decrypt")
    );
}

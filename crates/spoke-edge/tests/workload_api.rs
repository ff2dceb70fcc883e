//! The workload API over real Unix sockets (azure-iot-edge-contracts.md §1.1, §1.2, §2.3):
//! wire shapes, authorization, certificates checked by rustls' webpki verifiers and x509-parser.

mod workload_common;

use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper::{Method, StatusCode};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde_json::json;
use spoke_edge::workload::{ApiVersion, WorkloadError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use workload_common::{DEVICE, Daemon, HUB, get, module, post, send};
use x509_parser::extensions::GeneralName;

const V: &str = "api-version=2022-08-03";

fn hmac(key: &[u8], data: &[u8]) -> String {
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), data);
    BASE64.encode(tag.as_ref())
}

fn pem_certs(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn roots(daemon: &Daemon) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(pem_certs(&daemon.ca.cert_pem).remove(0)).unwrap();
    Arc::new(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[tokio::test]
async fn python_sdk_sign_request_matches_local_hmac() {
    let daemon = Daemon::new();
    daemon.add_module("$edgeHub", b"edge hub key");
    let socket = daemon.api.bind(module("$edgeHub")).unwrap();
    assert_eq!(socket.path(), daemon.dir.path().join("mnt/edgeHub.sock"));
    let string_to_sign = "hub.example.net%2Fdevices%2Fedge-1%2Fmodules%2F%24edgeHub\n1700003600";
    // The exact bytes azure-iot-device sends: json.dumps (with spaces), no Content-Type.
    let body = format!(
        r#"{{"keyId": "primary", "algo": "HMACSHA256", "data": "{}"}}"#,
        BASE64.encode(string_to_sign)
    );
    for version in ["2022-08-03", "2020-07-07"] {
        let target = format!("/modules/%24edgeHub/genid/637512345/sign?api-version={version}");
        let reply = send(socket.path(), Method::POST, &target, Some(&body), None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
        assert_eq!(reply.headers["content-type"], "application/json");
        assert_eq!(
            reply.json,
            json!({"digest": hmac(b"edge hub key", string_to_sign.as_bytes())})
        );
    }
    // A Content-Type does not hurt either.
    let target = format!("/modules/%24edgeHub/genid/1/sign?{V}");
    let reply = send(
        socket.path(),
        Method::POST,
        &target,
        Some(&body),
        Some("application/json"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn every_api_version_is_accepted_and_others_are_400() {
    let daemon = Daemon::new();
    daemon.add_module("filter", b"k");
    let socket = daemon.api.bind(module("filter")).unwrap();
    for version in ApiVersion::ALL {
        let target = format!("/trust-bundle?api-version={}", version.as_str());
        assert_eq!(get(socket.path(), &target).await.status, StatusCode::OK);
    }
    for target in [
        "/trust-bundle",
        "/trust-bundle?api-version=2017-11-11",
        "/trust-bundle?api-version=",
    ] {
        let reply = get(socket.path(), target).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{target}");
        assert!(reply.json["message"].is_string(), "{}", reply.json);
    }
}

#[tokio::test]
async fn trust_bundle_is_pem_text_with_the_extra_bundle() {
    let other = spoke_core::pki::CertificateAuthority::generate(
        "upstream root",
        time::OffsetDateTime::now_utc(),
        time::Duration::days(1),
    )
    .unwrap();
    let extra = other.cert_pem.clone();
    let daemon = Daemon::with(|c| c.trust.trust_bundle = Some(extra));
    daemon.add_module("filter", b"k");
    let socket = daemon.api.bind(module("filter")).unwrap();
    let reply = get(socket.path(), &format!("/trust-bundle?{V}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let pem = reply.json["certificate"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let certs = pem_certs(pem);
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0], pem_certs(&daemon.ca.cert_pem)[0]);
    assert_eq!(certs[1], pem_certs(&other.cert_pem)[0]);
    let manifest = get(socket.path(), &format!("/manifest-trust-bundle?{V}")).await;
    assert_eq!(manifest.json, json!({"certificate": ""}));
}

#[tokio::test]
async fn server_certificate_validates_against_the_edge_ca() {
    let daemon = Daemon::new();
    daemon.add_module("$edgeHub", b"k");
    let socket = daemon.api.bind(module("$edgeHub")).unwrap();
    let target = format!("/modules/%24edgeHub/genid/9/certificate/server?{V}");
    let body = json!({"commonName": "edge-1.local", "expiration": "2099-01-01T00:00:00Z"});
    let reply = post(socket.path(), &target, &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
    assert_eq!(reply.json["privateKey"]["type"], "key");
    let key_pem = reply.json["privateKey"]["bytes"].as_str().unwrap();
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let chain = pem_certs(reply.json["certificate"].as_str().unwrap());
    assert_eq!(chain.len(), 2, "leaf and edge CA");

    let verifier = WebPkiServerVerifier::builder_with_provider(roots(&daemon), provider())
        .build()
        .unwrap();
    for name in ["edge-1.local", "edgeHub"] {
        verifier
            .verify_server_cert(
                &chain[0],
                &chain[1..],
                &ServerName::try_from(name).unwrap(),
                &[],
                UnixTime::now(),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let wrong = ServerName::try_from("other.local").unwrap();
    assert!(
        verifier
            .verify_server_cert(&chain[0], &chain[1..], &wrong, &[], UnixTime::now())
            .is_err()
    );
    // The key belongs to the certificate: rustls accepts the pair for a server.
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain.clone(), key)
        .unwrap();

    let (_, cert) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(cn.as_str().unwrap(), "edge-1.local");
    let sans = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        sans.value.general_names,
        vec![
            GeneralName::DNSName("edge-1.local"),
            GeneralName::DNSName("edgeHub")
        ]
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    let expiration = reply.json["expiration"].as_str().unwrap();
    let expiration =
        time::OffsetDateTime::parse(expiration, &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert_eq!(
        expiration.unix_timestamp(),
        cert.validity().not_after.timestamp()
    );
}

#[tokio::test]
async fn server_certificate_for_an_ip_has_an_ip_san() {
    let daemon = Daemon::new();
    daemon.add_module("filter", b"k");
    let socket = daemon.api.bind(module("filter")).unwrap();
    let target = format!("/modules/filter/genid/1/certificate/server?{V}");
    let reply = post(socket.path(), &target, &json!({"commonName": "127.0.0.2"})).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let chain = pem_certs(reply.json["certificate"].as_str().unwrap());
    let (_, cert) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
    let sans = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        sans.value.general_names,
        vec![
            GeneralName::IPAddress(&[127, 0, 0, 2]),
            GeneralName::DNSName("filter")
        ]
    );
}

#[tokio::test]
async fn identity_certificate_is_a_client_certificate_for_the_module() {
    let daemon = Daemon::new();
    daemon.add_module("filter", b"k");
    let socket = daemon.api.bind(module("filter")).unwrap();
    // No body at all, and the optional {"expiration"} body: both work.
    for body in [None, Some(r#"{"expiration":"2099-01-01T00:00:00Z"}"#)] {
        let target = format!("/modules/filter/certificate/identity?{V}");
        let reply = send(socket.path(), Method::POST, &target, body, None).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
        let chain = pem_certs(reply.json["certificate"].as_str().unwrap());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots(&daemon), provider())
            .build()
            .unwrap();
        verifier
            .verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
            .unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
        let cn = cert.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), "filter");
        let sans = cert.subject_alternative_name().unwrap().unwrap();
        let uri = format!("azureiot://{HUB}/devices/{DEVICE}/modules/filter");
        assert_eq!(sans.value.general_names, vec![GeneralName::URI(&uri)]);
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
    }
}

#[tokio::test]
async fn encrypt_decrypt_round_trip_and_tampering_is_400() {
    let daemon = Daemon::new();
    daemon.add_module("$edgeAgent", b"k");
    let socket = daemon.api.bind(module("$edgeAgent")).unwrap();
    let iv = BASE64.encode("a fixed IV from IOTEDGE_BACKUP_IV");
    let plaintext = BASE64.encode(b"{\"twin\": \"state\"}\x00\xff");
    let encrypt = format!("/modules/%24edgeAgent/genid/1/encrypt?{V}");
    let decrypt = format!("/modules/%24edgeAgent/genid/1/decrypt?{V}");
    let sealed = post(
        socket.path(),
        &encrypt,
        &json!({"plaintext": plaintext, "initializationVector": iv}),
    )
    .await;
    assert_eq!(sealed.status, StatusCode::OK, "{}", sealed.json);
    let ciphertext = sealed.json["ciphertext"].as_str().unwrap().to_owned();
    assert_ne!(ciphertext, plaintext);

    let opened = post(
        socket.path(),
        &decrypt,
        &json!({"ciphertext": ciphertext, "initializationVector": iv}),
    )
    .await;
    assert_eq!(opened.status, StatusCode::OK);
    assert_eq!(opened.json, json!({"plaintext": plaintext}));

    let mut bytes = BASE64.decode(&ciphertext).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    let tampered = post(
        socket.path(),
        &decrypt,
        &json!({"ciphertext": BASE64.encode(&bytes), "initializationVector": iv}),
    )
    .await;
    assert_eq!(tampered.status, StatusCode::BAD_REQUEST);
    assert!(tampered.json["message"].is_string());

    let other_iv = post(
        socket.path(),
        &decrypt,
        &json!({"ciphertext": ciphertext, "initializationVector": BASE64.encode("x")}),
    )
    .await;
    assert_eq!(other_iv.status, StatusCode::BAD_REQUEST);

    // Another module cannot open it, even with the same IV.
    daemon.add_module("spy", b"k");
    let spy = daemon.api.bind(module("spy")).unwrap();
    let stolen = post(
        spy.path(),
        &format!("/modules/spy/genid/1/decrypt?{V}"),
        &json!({"ciphertext": ciphertext, "initializationVector": iv}),
    )
    .await;
    assert_eq!(stolen.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn another_module_in_the_path_is_403() {
    let daemon = Daemon::new();
    daemon.add_module("filter", b"filter key");
    daemon.add_module("$edgeHub", b"hub key");
    let socket = daemon.api.bind(module("filter")).unwrap();
    let body = json!({"data": BASE64.encode("x")});
    for target in [
        format!("/modules/%24edgeHub/genid/1/sign?{V}"),
        format!("/modules/edgeHub/genid/1/sign?{V}"),
        format!("/modules/filter2/certificate/identity?{V}"),
        format!("/modules/%66ilter%2F/genid/1/encrypt?{V}"),
    ] {
        let reply = post(socket.path(), &target, &body).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{target}");
        assert!(reply.json["message"].is_string());
    }
    // Percent-encoding of the right name is fine.
    let reply = post(
        socket.path(),
        &format!("/modules/%66ilter/genid/1/sign?{V}"),
        &body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn a_process_outside_the_module_is_403() {
    let daemon = Daemon::new();
    daemon.add_module("filter", b"k");
    // `other` has a key, but this process is not one of its processes.
    daemon
        .keys
        .0
        .lock()
        .unwrap()
        .insert("other".into(), b"k".to_vec());
    daemon.pids.allow("other", std::process::id() + 1);
    let socket = daemon.api.bind(module("other")).unwrap();
    for (method, target) in [
        (Method::POST, format!("/modules/other/genid/1/sign?{V}")),
        (Method::GET, format!("/trust-bundle?{V}")),
        (Method::GET, "/nowhere".to_owned()),
    ] {
        let body = json!({"data": "eA=="}).to_string();
        let reply = send(socket.path(), method, &target, Some(&body), None).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{target}");
        assert_eq!(
            reply.json["message"],
            "the caller is not a process of module other"
        );
    }
}

#[tokio::test]
async fn unknown_routes_methods_and_bodies() {
    let daemon = Daemon::new();
    daemon.add_module("filter", b"k");
    let socket = daemon.api.bind(module("filter")).unwrap();
    let path = socket.path();
    assert_eq!(
        get(path, &format!("/modules?{V}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(path, &format!("/modules/filter/genid/1/sign?{V}"))
            .await
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let sign = format!("/modules/filter/genid/1/sign?{V}");
    for body in ["", "not json", r#"{"data": 5}"#, r#"{"data": "%%%"}"#] {
        let reply = send(path, Method::POST, &sign, Some(body), None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
    }
    // A body over the limit is refused from its Content-Length, before it is sent.
    let mut stream = tokio::net::UnixStream::connect(path).await.unwrap();
    let head = format!("POST {sign} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 413 "), "{reply}");
    assert!(reply.ends_with(r#"{"message":"the request body is larger than 4194304 bytes"}"#));
}

#[tokio::test]
async fn many_clients_share_a_small_concurrency_limit() {
    let daemon = Daemon::with(|c| c.max_concurrent_requests = 2);
    daemon.add_module("filter", b"k");
    let socket = daemon.api.bind(module("filter")).unwrap();
    let path = socket.path().to_owned();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let path = path.clone();
        tasks.spawn(async move {
            let data = BASE64.encode(format!("request {i}"));
            let target = format!("/modules/filter/genid/1/sign?{V}");
            let reply = post(&path, &target, &json!({ "data": data })).await;
            (i, reply.status, reply.json)
        });
    }
    while let Some(result) = tasks.join_next().await {
        let (i, status, json) = result.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            json["digest"],
            hmac(b"k", format!("request {i}").as_bytes())
        );
    }
}

#[tokio::test]
async fn socket_file_lifecycle() {
    let daemon = Daemon::new();
    daemon.add_module("filter", b"k");
    let socket = daemon.api.bind(module("filter")).unwrap();
    let path = socket.path().to_owned();
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o666);
    drop(socket);
    assert!(!path.exists(), "dropping the socket removes the file");

    // A stale socket left by a crash is replaced.
    let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(stale);
    let socket = daemon.api.bind(module("filter")).unwrap();
    assert_eq!(
        get(socket.path(), &format!("/trust-bundle?{V}"))
            .await
            .status,
        StatusCode::OK
    );
    drop(socket);

    // Anything else in the way is an error, and is left alone.
    std::fs::write(&path, "not a socket").unwrap();
    assert!(matches!(
        daemon.api.bind(module("filter")),
        Err(WorkloadError::NotASocket { .. })
    ));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
}

#[tokio::test]
async fn renewed_edge_ca_is_served_without_rebinding() {
    let daemon = Daemon::new();
    daemon.add_module("filter", b"k");
    let socket = daemon.api.bind(module("filter")).unwrap();
    let renewed = spoke_core::pki::CertificateAuthority::generate(
        "renewed edge CA",
        time::OffsetDateTime::now_utc(),
        time::Duration::days(1),
    )
    .unwrap();
    let config = workload_common::config(daemon.dir.path(), &renewed, None);
    daemon.api.replace_trust(config.trust);
    let reply = get(socket.path(), &format!("/trust-bundle?{V}")).await;
    assert_eq!(reply.json["certificate"], renewed.cert_pem);
}

//! The edge device manages its module identities in a real Spoke Hub (in-process, port 0),
//! authenticated with its own key.

use std::net::IpAddr;

use spoke_core::connstr::ConnectionString;
use spoke_core::ids::{DeviceId, ModuleId};
use spoke_core::sas::service_token;
use spoke_edge::identity::{DeviceCredentials, IdentityClient, IdentityError};
use spoke_hub::HubConfig;

async fn hub(dir: &std::path::Path) -> spoke_hub::RunningHub {
    let config = HubConfig {
        hostname: "127.0.0.1".into(),
        bind: IpAddr::from([127, 0, 0, 1]),
        mqtt_port: 0,
        https_port: 0,
        ..HubConfig::new(dir.to_owned())
    };
    spoke_hub::start(config).await.unwrap()
}

/// Creates an edge device through the service API; returns its primary key.
async fn create_edge_device(dir: &std::path::Path, port: u16, id: &str) -> String {
    let ca = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    let cs = ConnectionString::parse(
        std::fs::read_to_string(dir.join("service.connstr"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let token = service_token(
        "127.0.0.1",
        "iothubowner",
        cs.shared_access_key().unwrap(),
        u64::MAX / 4,
    )
    .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(ca.as_bytes()) {
        let cert: rustls_pki_types::CertificateDer<'static> = cert.unwrap();
        roots.add(cert).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap();
    let body = serde_json::json!({"deviceId": id, "capabilities": {"iotEdge": true}, "authentication": {"type": "sas", "symmetricKey": {}}});
    let entry: serde_json::Value = http
        .put(format!(
            "https://127.0.0.1:{port}/devices/{id}?api-version=2021-04-12"
        ))
        .header("authorization", token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    entry["authentication"]["symmetricKey"]["primaryKey"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_edge_device_creates_reads_and_deletes_its_module_identities() {
    let dir = tempfile::tempdir().unwrap();
    let running = hub(dir.path()).await;
    let port = running.https_addr().port();
    let key = create_edge_device(dir.path(), port, "edge1").await;
    let ca = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    let credentials = DeviceCredentials {
        hub_host: "127.0.0.1".into(),
        device_id: DeviceId::parse("edge1").unwrap(),
        key,
    };
    let client = IdentityClient::new(credentials.clone(), port, &ca).unwrap();
    let filter = ModuleId::parse("filter").unwrap();
    let created = client.get_or_create(&filter).await.unwrap();
    assert_eq!(created.primary_key.len(), 44);
    assert_eq!(
        client.get_or_create(&filter).await.unwrap(),
        created,
        "the second call reads"
    );
    let agent = client
        .get_or_create(&ModuleId::parse("$edgeAgent").unwrap())
        .await
        .unwrap();
    assert_ne!(agent.primary_key, created.primary_key);
    client.delete(&filter).await.unwrap();
    let recreated = client.get_or_create(&filter).await.unwrap();
    assert_ne!(
        recreated.primary_key, created.primary_key,
        "a new identity has new keys"
    );

    let impostor = IdentityClient::new(
        DeviceCredentials {
            key: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
            ..credentials
        },
        port,
        &ca,
    )
    .unwrap();
    let refused = impostor.get_or_create(&filter).await.unwrap_err();
    assert!(
        matches!(refused, IdentityError::Refused { status: 401, .. }),
        "{refused:?}"
    );
    running.stop().await;
}

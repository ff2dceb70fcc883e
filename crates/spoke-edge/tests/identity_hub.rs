//! The edge device manages its module identities in a real Spoke Hub (in-process, port 0),
//! authenticated with its own key.

use std::net::IpAddr;

mod support;

use spoke_core::ids::{DeviceId, ModuleId};
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

#[tokio::test]
async fn an_edge_device_creates_reads_and_deletes_its_module_identities() {
    let dir = tempfile::tempdir().unwrap();
    let running = hub(dir.path()).await;
    let port = running.https_addr().port();
    let key = support::Service::new(dir.path(), "127.0.0.1", port)
        .edge_device("edge1")
        .await;
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

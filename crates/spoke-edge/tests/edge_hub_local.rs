//! The edge hub in-process, with Spoke's own module clients (spoke-sdk) and an injected queue
//! clock, so that time to live is tested without waiting: routing to a module input, expiry
//! counted in the metrics, route changes, and the module's own topics only. The upstream hub is
//! an address where nothing listens (the link keeps retrying in the background).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use spoke_core::ids::{DeviceId, Identity, ModuleId};
use spoke_core::manifest::{BrokerPolicy, HubDesired, RouteSpec, StoreAndForward};
use spoke_core::message::Message;
use spoke_core::pki::CertificateAuthority;
use spoke_core::route::RouteTable;
use spoke_edge::edgehub::{CloudConfig, EdgeHub, EdgeHubConfig, Routing};
use spoke_edge::workload::KeyStore;
use spoke_sdk::{Client, ClientConfig, Credentials, Event, Events};
use spoke_store::queue::{Clock, QueueConfig};

const EDGE_IP: &str = "127.0.0.77";
/// Where the hub would be: nothing listens there.
const HUB_IP: &str = "127.0.0.78";
const WAIT: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Keys(HashMap<String, Vec<u8>>);

impl KeyStore for Keys {
    fn module_key(&self, module: &ModuleId) -> Option<Vec<u8>> {
        self.0.get(module.as_str()).cloned()
    }
}

fn key_of(module: &str) -> Vec<u8> {
    format!("{module:-<32}").into_bytes()
}

/// Routes `(name, text, time to live)`, without priorities.
fn routing(routes: &[(&str, &str, Option<u32>)]) -> Routing {
    with_policy(routes, None)
}

fn with_policy(routes: &[(&str, &str, Option<u32>)], policy: Option<serde_json::Value>) -> Routing {
    let specs = routes
        .iter()
        .map(|(name, text, ttl)| (*name, *text, *ttl, None));
    compile(specs, policy)
}

/// Routes `(name, text, priority)`.
fn prioritized(routes: &[(&str, &str, Option<u8>)]) -> Routing {
    let specs = routes
        .iter()
        .map(|(name, text, priority)| (*name, *text, None, *priority));
    compile(specs, None)
}

fn compile<'a>(
    routes: impl Iterator<Item = (&'a str, &'a str, Option<u32>, Option<u8>)>,
    policy: Option<serde_json::Value>,
) -> Routing {
    let desired = HubDesired {
        schema_version: "1.1".into(),
        routes: routes
            .map(|(name, text, ttl_secs, priority)| {
                let spec = RouteSpec {
                    text: text.to_owned(),
                    priority,
                    ttl_secs,
                };
                (name.to_owned(), spec)
            })
            .collect::<BTreeMap<_, _>>(),
        store_and_forward: StoreAndForward {
            ttl_secs: 7200,
            max_size_bytes: None,
        },
        mqtt_broker: None,
    };
    Routing {
        table: RouteTable::compile(&desired).unwrap(),
        ttl_secs: 7200,
        broker: policy.map(|p| BrokerPolicy::from_json(&p, "$edgeHub.mqttBroker").unwrap()),
    }
}

struct Edge {
    hub: EdgeHub,
    ca: CertificateAuthority,
    clock: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
}

async fn start(routes: Routing) -> Edge {
    let dir = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let ca = CertificateAuthority::generate("edge test CA", now, time::Duration::days(1)).unwrap();
    let clock = Arc::new(AtomicI64::new(1_000_000));
    let reading = clock.clone();
    let config = EdgeHubConfig {
        hostname: EDGE_IP.into(),
        bind: EDGE_IP.parse::<IpAddr>().unwrap(),
        also_bind: Vec::new(),
        mqtt_port: 0,
        https_port: 0,
        metrics_port: 0,
        store_dir: dir.path().join("store"),
        sessions_file: dir.path().join("sessions.json"),
        twins_file: dir.path().join("twins.json"),
        queue: QueueConfig {
            clock: Clock::from_fn(move || reading.load(Ordering::SeqCst)),
            ..QueueConfig::default()
        },
        upstream: CloudConfig {
            hub_hostname: HUB_IP.into(),
            port: 8883,
            ca_pem: ca.cert_pem.clone(),
            device: DeviceId::parse("edge").unwrap(),
        },
        device_key: base64::engine::general_purpose::STANDARD.encode(key_of("edge")),
    };
    let keys = ["sender", "receiver", "other"]
        .map(|m| (m.to_owned(), key_of(m)))
        .into_iter()
        .collect();
    let hub = EdgeHub::start(config, &ca, Arc::new(Keys(keys)), routes)
        .await
        .unwrap();
    Edge {
        hub,
        ca,
        clock,
        _dir: dir,
    }
}

impl Edge {
    async fn module(&self, name: &str) -> (Client, Events) {
        let identity = Identity::module(
            DeviceId::parse("edge").unwrap(),
            ModuleId::parse(name).unwrap(),
        );
        let key = base64::engine::general_purpose::STANDARD.encode(key_of(name));
        let mut config = ClientConfig::new(
            HUB_IP,
            identity,
            Credentials::SymmetricKey(key),
            self.ca.cert_pem.clone(),
        );
        config.host = EDGE_IP.into();
        config.port = self.hub.mqtt_addr().port();
        let (client, mut events) = Client::connect(config).await.unwrap();
        assert!(matches!(events.recv().await, Some(Event::Connected)));
        (client, events)
    }

    fn advance(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }
}

async fn send(client: &Client, output: &str, body: &str) {
    client
        .send_output(output, Message::new(body.as_bytes().to_vec()))
        .await
        .unwrap();
}

/// The next input message.
async fn next_input(events: &mut Events) -> (String, Message) {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Message {
                input: Some(input),
                message,
            } = events.recv().await.expect("client closed")
            {
                return (input, message);
            }
        }
    })
    .await
    .expect("an input message")
}

#[tokio::test]
async fn expired_messages_are_dropped_and_counted() {
    let to_receiver = "FROM /messages/modules/sender/outputs/* INTO BrokeredEndpoint(\"/modules/receiver/inputs/in\")";
    let edge = start(routing(&[("r", to_receiver, Some(60))])).await;
    let (sender, _sender_events) = edge.module("sender").await;
    for body in ["1", "2", "3"] {
        send(&sender, "out", body).await;
    }
    edge.advance(61_000);
    send(&sender, "out", "4").await;
    let (_receiver, mut inputs) = edge.module("receiver").await;
    let (input, message) = next_input(&mut inputs).await;
    assert_eq!(input, "in");
    assert_eq!(message.body, b"4");
    assert_eq!(
        message.system.connection_module_id.as_deref(),
        Some("sender")
    );
    assert_eq!(message.system.connection_device_id.as_deref(), Some("edge"));
    assert_eq!(message.system.output_name, None);
    let metrics = edge.hub.metrics_text();
    for line in [
        "spoke_edgehub_messages_expired_total{endpoint=\"/modules/receiver/inputs/in\"} 3",
        "spoke_edgehub_messages_routed_total{route=\"r\"} 4",
        "spoke_edgehub_upstream_connected 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in\n{metrics}"
        );
    }
    edge.hub.shutdown().await;
}

/// As in edgeHub, a route without a priority comes after every priority a route can set.
#[tokio::test]
async fn queued_messages_go_by_route_priority_and_unset_is_lowest() {
    let from = |output: &str| {
        format!(
            "FROM /messages/modules/sender/outputs/{output} INTO BrokeredEndpoint(\"/modules/receiver/inputs/in\")"
        )
    };
    let (unset, nine, zero) = (from("unset"), from("nine"), from("zero"));
    let edge = start(prioritized(&[
        ("unset", &unset, None),
        ("nine", &nine, Some(9)),
        ("zero", &zero, Some(0)),
    ]))
    .await;
    let (sender, _sender_events) = edge.module("sender").await;
    for output in ["unset", "nine", "zero"] {
        send(&sender, output, output).await;
    }
    let (_receiver, mut inputs) = edge.module("receiver").await;
    let mut order = Vec::new();
    for _ in 0..3 {
        order.push(String::from_utf8(next_input(&mut inputs).await.1.body).unwrap());
    }
    assert_eq!(order, ["zero", "nine", "unset"]);
    edge.hub.shutdown().await;
}

#[tokio::test]
async fn new_routes_apply_to_new_messages_and_queued_ones_still_arrive() {
    let to = |input: &str| {
        format!(
            "FROM /messages/modules/sender/* INTO BrokeredEndpoint(\"/modules/receiver/inputs/{input}\")"
        )
    };
    let edge = start(routing(&[("a", &to("a"), None)])).await;
    let (sender, _sender_events) = edge.module("sender").await;
    send(&sender, "out", "first").await;
    edge.hub
        .route_control()
        .set(routing(&[("b", &to("b"), None)]));
    send(&sender, "out", "second").await;
    let (_receiver, mut inputs) = edge.module("receiver").await;
    let mut got = [next_input(&mut inputs).await, next_input(&mut inputs).await];
    got.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(got[0].0, "a");
    assert_eq!(got[0].1.body, b"first");
    assert_eq!(got[1].0, "b");
    assert_eq!(got[1].1.body, b"second");
    edge.hub.shutdown().await;
}

#[tokio::test]
async fn a_module_s_messages_keep_their_order_with_many_in_flight() {
    const N: usize = 2000;
    let route = "FROM /messages/modules/sender/outputs/out INTO BrokeredEndpoint(\"/modules/receiver/inputs/in\")";
    let edge = start(routing(&[("r", route, None)])).await;
    let (_receiver, mut inputs) = edge.module("receiver").await;
    let (sender, mut sender_loop) = {
        let (client, mut events) = raw_module(&edge, "sender");
        // Many PUBLISHes in flight at once: the edge hub handles them concurrently.
        events.mqtt_options.set_inflight(200);
        (client, events)
    };
    let polling = tokio::spawn(async move {
        let mut acked = 0;
        while acked < N {
            match sender_loop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("sender connection: {e}"),
            }
        }
    });
    let topic = "devices/edge/modules/sender/messages/events/%24.on=out";
    for seq in 0..N {
        sender
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, seq.to_string())
            .await
            .unwrap();
    }
    for seq in 0..N {
        let (input, message) = next_input(&mut inputs).await;
        assert_eq!(input, "in");
        assert_eq!(message.body, seq.to_string().as_bytes(), "message {seq}");
    }
    tokio::time::timeout(WAIT, polling).await.unwrap().unwrap();
    edge.hub.shutdown().await;
}

#[tokio::test]
async fn a_module_may_not_publish_as_another() {
    let edge = start(routing(&[])).await;
    let (other, mut events) = edge.module("other").await;
    let forged = Identity::module(
        DeviceId::parse("edge").unwrap(),
        ModuleId::parse("sender").unwrap(),
    );
    let attempt = other.submit_event_for(&forged, Message::new(b"x".to_vec()));
    let _pending = attempt.await.unwrap();
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Event::Disconnected { .. }) = events.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the edge hub closes the connection of a forging module"
    );
    edge.hub.shutdown().await;
}

/// A plain MQTT client (rumqttc) connected to the edge hub as module `name`, with a SAS token.
fn raw_module(edge: &Edge, name: &str) -> (rumqttc::AsyncClient, rumqttc::EventLoop) {
    let identity = Identity::module(
        DeviceId::parse("edge").unwrap(),
        ModuleId::parse(name).unwrap(),
    );
    let key = base64::engine::general_purpose::STANDARD.encode(key_of(name));
    let resource = spoke_core::sas::resource_uri(HUB_IP, &identity);
    let token = spoke_core::sas::device_token(&resource, &key, u64::MAX / 4).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(edge.ca.cert_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut options =
        rumqttc::MqttOptions::new(identity.client_id(), EDGE_IP, edge.hub.mqtt_addr().port());
    options.set_credentials(
        format!("{HUB_IP}/{}/?api-version=2021-04-12", identity.client_id()),
        token,
    );
    options.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(Arc::new(tls)),
    ));
    rumqttc::AsyncClient::new(options, 10)
}

/// The next incoming packet (or the connection's error).
async fn next_packet(
    events: &mut rumqttc::EventLoop,
) -> Result<rumqttc::Packet, rumqttc::ConnectionError> {
    tokio::time::timeout(WAIT, async {
        loop {
            if let rumqttc::Event::Incoming(packet) = events.poll().await? {
                return Ok(packet);
            }
        }
    })
    .await
    .expect("an MQTT packet")
}

/// Polls until a packet matching `want` arrives.
async fn wait_for<T>(
    events: &mut rumqttc::EventLoop,
    want: impl Fn(&rumqttc::Packet) -> Option<T>,
) -> T {
    loop {
        let packet = next_packet(events).await.expect("connection up");
        if let Some(found) = want(&packet) {
            return found;
        }
    }
}

#[tokio::test]
async fn custom_topics_follow_the_mqtt_broker_policy() {
    let policy = serde_json::json!({"authorizations": [
        {"identities": ["{{iot:identity}}"], "allow": [{"operations": ["mqtt:connect"]}]},
        {"identities": ["edge/sender"], "allow": [{"operations": ["mqtt:publish"], "resources": ["alerts/{{iot:module_id}}/#"]}]},
        {"identities": ["edge/receiver"], "allow": [{"operations": ["mqtt:subscribe"], "resources": ["alerts/#"]}]}
    ]});
    let edge = start(with_policy(&[], Some(policy))).await;
    let (receiver, mut receiver_events) = raw_module(&edge, "receiver");
    receiver
        .subscribe("alerts/#", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    receiver
        .subscribe("secrets/#", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut codes = Vec::new();
    while codes.len() < 2 {
        codes.extend(
            wait_for(&mut receiver_events, |p| match p {
                rumqttc::Packet::SubAck(ack) => Some(ack.return_codes.clone()),
                _ => None,
            })
            .await,
        );
    }
    assert_eq!(
        codes,
        [
            rumqttc::SubscribeReasonCode::Success(rumqttc::QoS::AtLeastOnce),
            rumqttc::SubscribeReasonCode::Failure
        ]
    );

    let (sender, mut sender_events) = raw_module(&edge, "sender");
    sender
        .publish(
            "alerts/sender/fire",
            rumqttc::QoS::AtLeastOnce,
            false,
            "hot",
        )
        .await
        .unwrap();
    wait_for(&mut sender_events, |p| {
        matches!(p, rumqttc::Packet::PubAck(_)).then_some(())
    })
    .await;
    let (topic, payload) = wait_for(&mut receiver_events, |p| match p {
        rumqttc::Packet::Publish(m) => Some((m.topic.clone(), m.payload.clone())),
        _ => None,
    })
    .await;
    assert_eq!(
        (topic.as_str(), &payload[..]),
        ("alerts/sender/fire", &b"hot"[..])
    );

    // Publishing where the policy does not allow it closes the connection.
    let (other, mut other_events) = raw_module(&edge, "other");
    wait_for(&mut other_events, |p| {
        matches!(p, rumqttc::Packet::ConnAck(_)).then_some(())
    })
    .await;
    other
        .publish("alerts/other/x", rumqttc::QoS::AtLeastOnce, false, "x")
        .await
        .unwrap();
    let closed = loop {
        match next_packet(&mut other_events).await {
            Ok(rumqttc::Packet::PubAck(_)) => break false,
            Ok(_) => {}
            Err(_) => break true,
        }
    };
    assert!(closed, "a forbidden publish closes the connection");
    let metrics = edge.hub.metrics_text();
    assert!(
        metrics
            .lines()
            .any(|l| l == "spoke_edgehub_local_deliveries_total 1"),
        "{metrics}"
    );
    edge.hub.shutdown().await;
}

#[tokio::test]
async fn without_a_policy_modules_connect_but_custom_topics_are_refused() {
    let edge = start(routing(&[])).await;
    let (client, mut events) = raw_module(&edge, "receiver");
    client
        .subscribe("alerts/#", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    let codes = wait_for(&mut events, |p| match p {
        rumqttc::Packet::SubAck(ack) => Some(ack.return_codes.clone()),
        _ => None,
    })
    .await;
    assert_eq!(codes, [rumqttc::SubscribeReasonCode::Failure]);
    edge.hub.shutdown().await;
}

#[tokio::test]
async fn a_policy_without_a_connect_grant_refuses_connections() {
    let policy = serde_json::json!({"authorizations": [
        {"identities": ["edge/sender"], "allow": [{"operations": ["mqtt:connect"]}]}
    ]});
    let edge = start(with_policy(&[], Some(policy))).await;
    let (_client, mut events) = raw_module(&edge, "receiver");
    let refused = next_packet(&mut events).await;
    assert!(
        matches!(
            refused,
            Err(rumqttc::ConnectionError::ConnectionRefused(
                rumqttc::ConnectReturnCode::NotAuthorized
            ))
        ),
        "{refused:?}"
    );
    edge.hub.shutdown().await;
}

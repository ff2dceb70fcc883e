//! The server against a real MQTT client (rumqttc) over TCP on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::{TestHooks, WAIT, listen, server};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet};
use spoke_mqtt::{MemorySessionStore, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const C2D: &str = "devices/dev1/messages/devicebound/#";
const C2D_TOPIC: &str = "devices/dev1/messages/devicebound/%24.mid=m1&iothub-ack=full";

/// A rumqttc client with its event loop running in a task.
struct Device {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Event>,
    task: JoinHandle<()>,
}

impl Device {
    fn new(addr: SocketAddr, id: &str, manual_acks: bool) -> Self {
        let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        options
            .set_clean_session(false)
            .set_keep_alive(Duration::from_secs(30))
            .set_manual_acks(manual_acks)
            .set_credentials(format!("localhost/{id}/?api-version=2019-10-01"), "sas");
        let (client, mut eventloop) = AsyncClient::new(options, 256);
        let (tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok(event) = eventloop.poll().await {
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        Self {
            client,
            events,
            task,
        }
    }

    async fn incoming(&mut self) -> Packet {
        loop {
            let event = tokio::time::timeout(WAIT, self.events.recv())
                .await
                .expect("no event in time")
                .expect("event loop ended");
            if let Event::Incoming(packet) = event {
                return packet;
            }
        }
    }

    async fn connack(&mut self) -> bool {
        match self.incoming().await {
            Packet::ConnAck(ack) => ack.session_present,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    async fn next_publish(&mut self) -> rumqttc::Publish {
        loop {
            if let Packet::Publish(publish) = self.incoming().await {
                return publish;
            }
        }
    }

    /// Drops the TCP connection without DISCONNECT.
    fn kill(self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn persistent_subscription_across_reconnect_and_restart() {
    let store = MemorySessionStore::new();
    let first = server(TestHooks::with_store(store.clone()));
    let addr = listen(&first).await;

    let mut device = Device::new(addr, "dev1", false);
    assert!(!device.connack().await);
    device
        .client
        .subscribe(C2D, rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    assert!(matches!(device.incoming().await, Packet::SubAck(_)));
    let delivery = first
        .publish(
            "dev1",
            C2D_TOPIC.into(),
            Bytes::from_static(b"hello"),
            QoS::AtLeastOnce,
        )
        .unwrap();
    let publish = device.next_publish().await;
    assert_eq!(
        (publish.topic.as_str(), &publish.payload[..]),
        (C2D_TOPIC, &b"hello"[..])
    );
    assert_eq!(
        tokio::time::timeout(WAIT, delivery).await.unwrap(),
        Ok(()),
        "PUBACK completes"
    );
    device.client.disconnect().await.unwrap();
    first.hooks().disconnected("dev1").await;

    // Reconnect without subscribing, as the Azure SDK does.
    let mut device = Device::new(addr, "dev1", false);
    assert!(device.connack().await);
    first
        .publish(
            "dev1",
            C2D_TOPIC.into(),
            Bytes::from_static(b"again"),
            QoS::AtLeastOnce,
        )
        .unwrap();
    assert_eq!(&device.next_publish().await.payload[..], b"again");
    device.kill();

    // A new server (a restart) with the same store.
    let second = server(TestHooks::with_store(store));
    let addr = listen(&second).await;
    let mut device = Device::new(addr, "dev1", false);
    assert!(device.connack().await);
    let delivery = second
        .publish(
            "dev1",
            C2D_TOPIC.into(),
            Bytes::from_static(b"restart"),
            QoS::AtLeastOnce,
        )
        .unwrap();
    assert_eq!(&device.next_publish().await.payload[..], b"restart");
    assert_eq!(tokio::time::timeout(WAIT, delivery).await.unwrap(), Ok(()));
}

#[tokio::test]
async fn unacknowledged_message_is_redelivered_to_the_next_connection() {
    let server = server(TestHooks::default());
    let addr = listen(&server).await;
    let mut device = Device::new(addr, "dev1", true);
    device.connack().await;
    device
        .client
        .subscribe(C2D, rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    device.incoming().await;
    let delivery = server
        .publish(
            "dev1",
            C2D_TOPIC.into(),
            Bytes::from_static(b"c2d"),
            QoS::AtLeastOnce,
        )
        .unwrap();
    let first = device.next_publish().await;
    assert!(!first.dup);
    device.kill(); // manual acks: never acknowledged
    server.hooks().disconnected("dev1").await;

    let mut device = Device::new(addr, "dev1", false);
    assert!(device.connack().await);
    let again = device.next_publish().await;
    assert!(again.dup);
    assert_eq!((again.pkid, &again.payload[..]), (first.pkid, &b"c2d"[..]));
    assert_eq!(tokio::time::timeout(WAIT, delivery).await.unwrap(), Ok(()));
}

#[tokio::test]
async fn telemetry_burst_is_acknowledged() {
    let server = server(TestHooks::default());
    let addr = listen(&server).await;
    let mut device = Device::new(addr, "dev1", false);
    device.connack().await;
    let count = 500;
    let client = device.client.clone();
    let sender = tokio::spawn(async move {
        for i in 0..count {
            let topic = "devices/dev1/messages/events/%24.ct=application%2Fjson";
            let payload = format!("{{\"n\":{i}}}");
            client
                .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
                .await
                .unwrap();
        }
    });
    let mut acks = 0;
    while acks < count {
        if let Packet::PubAck(_) = device.incoming().await {
            acks += 1;
        }
    }
    sender.await.unwrap();
    let record = server.hooks().record();
    assert_eq!(record.published.len(), count);
    let in_order = record
        .published
        .iter()
        .enumerate()
        .all(|(i, (_, p))| p.payload == format!("{{\"n\":{i}}}"));
    assert!(in_order);
}

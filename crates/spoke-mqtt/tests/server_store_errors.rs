//! Session store failures: CONNECT is refused with "server unavailable", SUBSCRIBE gets
//! failure codes, UNSUBSCRIBE closes the connection.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use common::{Raw, connect_packet, pid, subscribe_packet};
use spoke_mqtt::codec::{
    Connack, ConnectReturnCode, Packet, Publish, QoS, Suback, SubackCode, Unsubscribe,
};
use spoke_mqtt::{
    Authenticated, ConnectInfo, DisconnectReason, Hooks, MemorySessionStore, PeerInfo,
    PublishError, Server, ServerConfig, SessionStore, StoreError, serve_connection,
};

/// A store that fails while `failing` is set.
#[derive(Default)]
struct FlakyStore {
    inner: MemorySessionStore,
    failing: AtomicBool,
}

impl FlakyStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(StoreError::new("disk on fire"))
        } else {
            Ok(())
        }
    }
}

impl SessionStore for FlakyStore {
    async fn load(&self, client_id: &str) -> Result<Option<Vec<(String, QoS)>>, StoreError> {
        self.check()?;
        self.inner.load(client_id).await
    }

    async fn save(&self, client_id: &str, subs: &[(String, QoS)]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.save(client_id, subs).await
    }

    async fn remove(&self, client_id: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.remove(client_id).await
    }
}

#[derive(Default)]
struct FlakyHooks {
    store: FlakyStore,
}

impl Hooks for FlakyHooks {
    type Client = ();
    type Store = FlakyStore;

    fn session_store(&self) -> &FlakyStore {
        &self.store
    }

    async fn authenticate(
        &self,
        connect: &ConnectInfo,
        _peer: &PeerInfo,
    ) -> Result<Authenticated<()>, ConnectReturnCode> {
        Ok(Authenticated {
            client: (),
            client_id: connect.client_id.clone(),
            expires_at: None,
        })
    }

    fn authorize_subscribe(&self, _client: &(), _filter: &str, qos: QoS) -> Option<QoS> {
        Some(qos)
    }

    async fn publish(&self, _client: &(), _publish: Publish) -> Result<(), PublishError> {
        Ok(())
    }
}

fn start(
    server: &Server<FlakyHooks>,
) -> (
    Raw<tokio::io::DuplexStream>,
    tokio::task::JoinHandle<DisconnectReason>,
) {
    let (client, server_side) = tokio::io::duplex(64 * 1024);
    let server = server.clone();
    let task =
        tokio::spawn(
            async move { serve_connection(&server, server_side, PeerInfo::default()).await },
        );
    (Raw::new(client), task)
}

#[tokio::test]
async fn store_failures() {
    let server = Server::new(FlakyHooks::default(), ServerConfig::default());
    let failing = &server.hooks().store.failing;

    failing.store(true, Ordering::SeqCst);
    let (mut raw, task) = start(&server);
    raw.send(&connect_packet("dev1", false, 60)).await;
    let unavailable = ConnectReturnCode::ServerUnavailable;
    assert_eq!(
        raw.expect().await,
        Packet::Connack(Connack {
            session_present: false,
            code: unavailable
        })
    );
    assert_eq!(task.await.unwrap(), DisconnectReason::Refused(unavailable));

    failing.store(false, Ordering::SeqCst);
    let (mut raw, task) = start(&server);
    raw.send(&connect_packet("dev1", false, 60)).await;
    assert!(
        matches!(raw.expect().await, Packet::Connack(c) if c.code == ConnectReturnCode::Accepted)
    );
    raw.send(&subscribe_packet(1, &[("a", QoS::AtLeastOnce)]))
        .await;
    raw.expect().await;

    failing.store(true, Ordering::SeqCst);
    raw.send(&subscribe_packet(2, &[("b", QoS::AtLeastOnce)]))
        .await;
    assert_eq!(
        raw.expect().await,
        Packet::Suback(Suback {
            packet_id: pid(2),
            codes: vec![SubackCode::Failure]
        })
    );
    assert!(
        !server.is_subscribed("dev1", "b"),
        "not granted when it could not be stored"
    );
    raw.send(&Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(3),
        filters: vec!["a".into()],
    }))
    .await;
    raw.expect_closed().await;
    assert_eq!(task.await.unwrap(), DisconnectReason::StoreFailed);
    assert!(server.is_subscribed("dev1", "a"));
}

//! The sensor against a real Spoke Hub started in-process, connected with a module
//! connection string: settings from the twin, `MessageCount`, the body on the events stream,
//! the reported settings and the `reset` method.

use serde_json::{Value, json};
use simulated_temperature_sensor::{MessageCount, OUTPUT, Options, run};
use spoke_core::message::Message;
use spoke_module_util::testing::TestHub;
use spoke_sdk::Client;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::oneshot;

fn time_created(payload: &Value) -> OffsetDateTime {
    let text = payload["timeCreated"].as_str().expect("timeCreated");
    assert!(text.ends_with('Z'), "UTC: {text}");
    OffsetDateTime::parse(text, &Rfc3339).expect("RFC 3339 timeCreated")
}

#[tokio::test]
async fn sends_message_count_readings_and_answers_reset() {
    let hub = TestHub::start().await;
    hub.create_edge_device("edge1").await;
    let config = hub.create_module("edge1", "sensor").await;
    hub.patch_module_desired("edge1", "sensor", json!({"SendInterval": 0.01}))
        .await;
    let mut events = hub.events("edge1").await;

    let (stop, stopped) = oneshot::channel::<()>();
    let options = Options {
        message_count: MessageCount::from_signed(3),
        ..Options::default()
    };
    let module = tokio::spawn(run(config, options, async {
        let _ = stopped.await;
    }));

    let mut batch = None;
    let mut times = Vec::new();
    for n in 1..=3 {
        let event = events.next().await;
        let event = &event["event"];
        assert_eq!(event["module"], "sensor");
        assert_eq!(event["annotations"]["iothub-outputname"], OUTPUT);
        let app = &event["properties"]["application"];
        assert_eq!(app["sequenceNumber"], n.to_string(), "{event}");
        let batch_id = app["batchId"].as_str().expect("batchId").to_owned();
        assert_eq!(batch.get_or_insert(batch_id.clone()), &batch_id);
        let payload = &event["payload"];
        let machine = payload["machine"].as_object().expect("machine");
        let temperature = machine["temperature"].as_f64().expect("temperature");
        assert!((20.0..30.0).contains(&temperature), "{temperature}");
        let pressure = machine["pressure"].as_f64().expect("pressure");
        assert!((0.9..2.0).contains(&pressure), "{pressure}");
        let ambient = payload["ambient"].as_object().expect("ambient");
        let ambient_temperature = ambient["temperature"].as_f64().expect("ambient");
        assert!((20.5..21.5).contains(&ambient_temperature));
        assert!((24..=26).contains(&ambient["humidity"].as_i64().expect("humidity")));
        assert_eq!(payload.as_object().unwrap().len(), 3, "{payload}");
        times.push(time_created(payload));
    }
    // SendInterval came from the twin: the default of 5 s would space them 10 s apart.
    assert!(
        times[2] - times[0] < time::Duration::seconds(4),
        "{times:?}"
    );

    let reported = hub.module_reported("edge1", "sensor").await;
    assert_eq!(reported["SendInterval"], json!(0.01));
    assert_eq!(reported["SendData"], true);

    let (status, answer) = hub.invoke_module_method("edge1", "sensor", "reset").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], 200);
    let (status, answer) = hub.invoke_module_method("edge1", "sensor", "reboot").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], 501);

    stop.send(()).unwrap();
    assert_eq!(module.await.unwrap().unwrap(), 3);

    // Nothing followed the third reading: a message sent once the sensor has stopped is the
    // next event of the device.
    let marker = hub.create_module("edge1", "marker").await;
    let (client, _events) = Client::connect(marker).await.unwrap();
    client
        .send_output("end", Message::new("end"))
        .await
        .unwrap();
    client.close().await.unwrap();
    let next = events.next().await;
    assert_eq!(next["event"]["module"], "marker", "{next}");
    hub.stop().await;
}

//! The sensor's synchronous core: it owns the settings, the simulated machine and the message
//! count, takes what happens (a tick of the send timer, desired properties, a method call, a
//! control message) and returns what to send, without any I/O; the
//! [`spoke_module_util::Driver`] does the I/O.
//!
//! Invariants: at most `MessageCount` messages are produced, numbered 1, 2, ... in their
//! `sequenceNumber` property; the machine advances on every tick, sent or not (as in Azure,
//! where `SendData=false` pauses the sending but not the simulation).

use std::time::{Duration, SystemTime};

use rand::Rng;
use serde_json::{Map, Value};
use spoke_core::message::Message;
use spoke_module_util::driver::not_implemented;
use spoke_module_util::{ModuleCore, Output};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::control::{self, CONTROL_INPUT, Command, RESET_METHOD};
use crate::settings::{MessageCount, SettingError, Settings};
use crate::simulation::{ParameterError, Simulator, SimulatorParameters};

/// The output readings are sent on.
pub const OUTPUT: &str = "temperatureOutput";

/// What the module is started with (the environment's part of the configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// How many messages to send.
    pub message_count: MessageCount,
    /// The simulation's constants.
    pub parameters: SimulatorParameters,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            message_count: MessageCount::UNLIMITED,
            parameters: SimulatorParameters::default(),
        }
    }
}

/// The sensor's state.
#[derive(Debug)]
pub struct Sensor<R> {
    settings: Settings,
    simulator: Simulator,
    message_count: MessageCount,
    sent: u64,
    batch_id: Uuid,
    rng: R,
}

impl<R: Rng> Sensor<R> {
    /// A sensor with default settings; `batch_id` goes into every message's `batchId`.
    pub fn new(options: Options, rng: R, batch_id: Uuid) -> Result<Self, ParameterError> {
        Ok(Self {
            settings: Settings::default(),
            simulator: Simulator::new(options.parameters)?,
            message_count: options.message_count,
            sent: 0,
            batch_id,
            rng,
        })
    }

    /// The current settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// How many messages have been produced.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Whether the message count is reached (no more ticks are needed).
    pub fn finished(&self) -> bool {
        self.message_count.reached(self.sent)
    }

    /// The current machine temperature, °C.
    pub fn machine_temperature(&self) -> f64 {
        self.simulator.temperature()
    }

    fn reset(&mut self, why: &str) {
        tracing::info!("{why}: resetting the machine temperature");
        self.simulator.reset();
    }

    fn settled(&self, errors: Vec<SettingError>) -> Value {
        for error in errors {
            tracing::warn!(%error, "ignoring a desired property");
        }
        tracing::info!(
            interval = ?self.settings.send_interval(),
            send_data = self.settings.send_data(),
            message_count = ?self.message_count.limit(),
            "settings"
        );
        self.settings.reported()
    }
}

impl<R: Rng> ModuleCore for Sensor<R> {
    fn load_desired(&mut self, desired: &Map<String, Value>) -> Value {
        self.settings = Settings::default();
        let errors = self.settings.apply(desired);
        self.settled(errors)
    }

    fn patch_desired(&mut self, patch: &Map<String, Value>) -> Value {
        let errors = self.settings.apply(patch);
        self.settled(errors)
    }

    /// `reset` resets the machine temperature (200, no payload); any other method is not
    /// implemented.
    fn method(&mut self, name: &str, _payload: &Value) -> (i32, Value) {
        if name == RESET_METHOD {
            self.reset("direct method");
            (200, Value::Null)
        } else {
            not_implemented(name)
        }
    }

    /// A message on the `control` input resets the machine when it holds a `Reset`.
    fn message(&mut self, input: Option<&str>, message: &Message) -> Option<Output> {
        if input != Some(CONTROL_INPUT) {
            tracing::debug!(?input, "ignoring a message on an unknown input");
            return None;
        }
        match control::parse_control(&message.body) {
            Ok(commands) if commands.contains(&Command::Reset) => self.reset("control message"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "ignoring a control message"),
        }
        None
    }

    /// `SendInterval`, until the message count is reached.
    fn tick_interval(&self) -> Option<Duration> {
        (!self.finished()).then(|| self.settings.send_interval())
    }

    /// Advances the machine and returns the reading for [`OUTPUT`], unless sending is
    /// disabled or the count is reached.
    fn tick(&mut self, now: SystemTime) -> Option<Output> {
        if self.finished() {
            return None;
        }
        let reading = self.simulator.step(&mut self.rng);
        if !self.settings.send_data() {
            return None;
        }
        self.sent += 1;
        let mut message = Message::new(reading.to_body(OffsetDateTime::from(now)));
        message.system.content_type = Some("application/json".into());
        message.system.content_encoding = Some("utf-8".into());
        message
            .app
            .push(("sequenceNumber".into(), Some(self.sent.to_string())));
        message
            .app
            .push(("batchId".into(), Some(self.batch_id.to_string())));
        if self.finished() {
            tracing::info!(count = self.sent, "done sending messages");
        }
        Some(Output {
            name: OUTPUT,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::json;
    use spoke_module_util::driver::METHOD_NOT_IMPLEMENTED;

    use super::*;

    fn now() -> SystemTime {
        time::macros::datetime!(2024-01-02 03:04:05 UTC).into()
    }

    fn sensor(count: i64) -> Sensor<StdRng> {
        let options = Options {
            message_count: MessageCount::from_signed(count),
            ..Options::default()
        };
        Sensor::new(options, StdRng::seed_from_u64(42), Uuid::nil()).unwrap()
    }

    fn object(value: &Value) -> &Map<String, Value> {
        value.as_object().unwrap()
    }

    fn warm(sensor: &mut Sensor<StdRng>) {
        for _ in 0..40 {
            sensor.tick(now());
        }
        assert!(sensor.machine_temperature() > 25.0);
    }

    fn is_cold(sensor: &Sensor<StdRng>) -> bool {
        (sensor.machine_temperature() - 21.0).abs() < f64::EPSILON
    }

    #[test]
    fn messages_are_numbered_and_stop_at_the_count() {
        let mut sensor = sensor(3);
        for n in 1..=3u64 {
            assert_eq!(sensor.tick_interval(), Some(Duration::from_secs(5)));
            let Output { name, message } = sensor.tick(now()).unwrap();
            assert_eq!(name, OUTPUT);
            assert_eq!(
                message.app_property("sequenceNumber"),
                Some(&*n.to_string())
            );
            assert_eq!(
                message.app_property("batchId"),
                Some("00000000-0000-0000-0000-000000000000")
            );
            assert_eq!(
                message.system.content_type.as_deref(),
                Some("application/json")
            );
            let body: Value = serde_json::from_slice(&message.body).unwrap();
            assert!(body["machine"]["temperature"].is_f64());
            assert_eq!(body["timeCreated"], "2024-01-02T03:04:05Z");
        }
        assert!(sensor.finished());
        assert_eq!(sensor.tick_interval(), None, "no more ticks needed");
        assert_eq!(sensor.tick(now()), None);
        assert_eq!(sensor.sent(), 3);
    }

    #[test]
    fn send_data_false_pauses_sending_but_not_the_machine() {
        let mut sensor = sensor(-1);
        let reported = sensor.patch_desired(object(&json!({"SendData": false, "SendInterval": 1})));
        assert_eq!(reported, json!({"SendData": false, "SendInterval": 1}));
        for _ in 0..20 {
            assert_eq!(sensor.tick(now()), None);
        }
        assert_eq!(sensor.sent(), 0);
        assert!(
            sensor.machine_temperature() > 21.0,
            "the machine kept warming"
        );
        assert_eq!(sensor.tick_interval(), Some(Duration::from_secs(1)));

        // Loading a whole document forgets what it does not hold.
        let reported = sensor.load_desired(object(&json!({"$version": 3})));
        assert_eq!(reported, json!({"SendData": true, "SendInterval": 5}));
        assert!(sensor.tick(now()).is_some());
        assert!(!sensor.finished(), "unlimited");
    }

    #[test]
    fn reset_by_method_and_by_control_message() {
        let mut sensor = sensor(-1);
        warm(&mut sensor);
        assert_eq!(sensor.method("reset", &Value::Null), (200, Value::Null));
        assert!(is_cold(&sensor));

        warm(&mut sensor);
        let control = |body: &str| Message::new(body);
        assert_eq!(
            sensor.message(Some("control"), &control(r#"{"command":"NoOperation"}"#)),
            None
        );
        sensor.message(Some("control"), &control("not json"));
        sensor.message(Some("input1"), &control(r#"{"command":"Reset"}"#));
        assert!(!is_cold(&sensor), "only the control input resets");
        sensor.message(
            Some("control"),
            &control(r#"[{"command":1},{"command":"Reset"}]"#),
        );
        assert!(is_cold(&sensor));

        let (status, payload) = sensor.method("reboot", &Value::Null);
        assert_eq!(status, METHOD_NOT_IMPLEMENTED);
        assert!(payload["message"].as_str().unwrap().contains("reboot"));
    }
}

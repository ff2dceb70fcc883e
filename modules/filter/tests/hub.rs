//! The filter against a real Spoke Hub started in-process, connected with a module
//! connection string. Without an edge hub nothing routes messages to `input1` (the decision
//! and the alert are unit-tested in the crate); this checks the I/O loop: it connects, loads
//! its threshold from the twin, reports it, follows a desired patch, and stops cleanly.

use filter::{DEFAULT_THRESHOLD, Filter};
use serde_json::{Map, Value, json};
use spoke_core::message::Message;
use spoke_module_util::testing::{TestHub, WAIT};
use spoke_module_util::{Driver, ModuleCore, Output};
use tokio::sync::{mpsc, oneshot};

/// The filter, telling the test when it has applied a desired patch.
struct Watched {
    filter: Filter,
    patched: mpsc::Sender<f64>,
}

impl ModuleCore for Watched {
    fn load_desired(&mut self, desired: &Map<String, Value>) -> Value {
        self.filter.load_desired(desired)
    }

    fn patch_desired(&mut self, patch: &Map<String, Value>) -> Value {
        let reported = self.filter.patch_desired(patch);
        self.patched
            .try_send(self.filter.threshold())
            .expect("the test reads every patch");
        reported
    }

    fn message(&mut self, input: Option<&str>, message: &Message) -> Option<Output> {
        self.filter.message(input, message)
    }
}

#[tokio::test]
async fn reports_its_threshold_follows_patches_and_stops_cleanly() {
    let hub = TestHub::start().await;
    hub.create_edge_device("edge1").await;
    let config = hub.create_module("edge1", "filter").await;
    // The deployment manifests' short name.
    hub.patch_module_desired("edge1", "filter", json!({"threshold": 30}))
        .await;

    let (patched, mut applied) = mpsc::channel(8);
    let core = Watched {
        filter: Filter::new(DEFAULT_THRESHOLD),
        patched,
    };
    let driver = Driver::start(config, core).await.unwrap();
    assert!((driver.core().filter.threshold() - 30.0).abs() < f64::EPSILON);
    let reported = hub.module_reported("edge1", "filter").await;
    assert_eq!(reported["TemperatureThreshold"], 30, "{reported}");

    let (stop, stopped) = oneshot::channel::<()>();
    let module = tokio::spawn(driver.run(async {
        let _ = stopped.await;
    }));
    hub.patch_module_desired("edge1", "filter", json!({"TemperatureThreshold": 35.5}))
        .await;
    let threshold = tokio::time::timeout(WAIT, applied.recv())
        .await
        .expect("the patch in time")
        .expect("a patch");
    assert!((threshold - 35.5).abs() < f64::EPSILON);
    // The driver reports a patch before it looks at the shutdown again.
    stop.send(()).unwrap();
    let core = module.await.unwrap().unwrap();
    assert_eq!((core.filter.received(), core.filter.forwarded()), (0, 0));
    let reported = hub.module_reported("edge1", "filter").await;
    assert_eq!(reported["TemperatureThreshold"], 35.5, "{reported}");
    hub.stop().await;
}

#[tokio::test]
async fn run_stops_at_shutdown_during_or_after_the_start() {
    let hub = TestHub::start().await;
    hub.create_edge_device("edge1").await;
    let config = hub.create_module("edge1", "filter").await;
    let filter = filter::run(config, 27.0, async {}).await.unwrap();
    if let Some(filter) = filter {
        assert!((filter.threshold() - 27.0).abs() < f64::EPSILON);
    }
    hub.stop().await;
}

//! Stable smoke run of `manifest::fuzzing::fuzz_manifest`: every committed corpus file, then
//! byte-level mutations of the seeds and random byte strings (`spoke-fuzz-smoke`), then random
//! structured manifests built on its seeded `Rng` (field values drawn from pools of valid and
//! invalid ones, mostly valid, so the parse-and-round-trip path runs as often as the error
//! paths), `$edgeHub` ones with `mqttBroker` policies half of the time.

use serde_json::{Map, Value, json};
use spoke_core::manifest::fuzzing::fuzz_manifest;
use spoke_core::manifest::{AgentDesired, Deployment, HubDesired};
use spoke_fuzz_smoke::{Rng, Smoke};

const MUTATIONS: usize = 8_000;
const STRUCTURED: usize = 8_000;
const SEED: u64 = 0x3A41_1FE5_7D00_C0DE;

/// Bytes that matter to JSON, for the byte-level mutations of the seeds.
const JSON_BYTES: &[u8] = b"{}[]\":,nul0123456789.-e$ a\\";

/// Random structured manifests: deployments, `$edgeAgent` and `$edgeHub` desired properties.
struct Manifests(Rng);

impl Manifests {
    /// A valid value most of the time, else one from `bad`.
    fn pick(&mut self, good: &[Value], bad: &[Value]) -> Value {
        if bad.is_empty() || !self.0.chance(20) {
            good[self.0.below(good.len())].clone()
        } else {
            bad[self.0.below(bad.len())].clone()
        }
    }

    /// Inserts `key: value` into `map` unless the field is left out (one time in 25).
    fn field(&mut self, map: &mut Map<String, Value>, key: &str, value: Value) {
        if !self.0.chance(25) {
            map.insert(key.to_owned(), value);
        }
    }

    fn create_options(&mut self, settings: &mut Map<String, Value>) {
        let text = self
            .pick(
                &[
                    json!(""),
                    json!("{}"),
                    json!("{\"HostConfig\":{\"Binds\":[\"/a:/b\"],\"Privileged\":true}}"),
                    json!("{\"Env\":[\"A=1\"],\"Labels\":{\"k\":\"é\"}}"),
                ],
                &[json!("null"), json!("[1]"), json!("{bad"), json!(5)],
            )
            .as_str()
            .map(str::to_owned);
        let Some(text) = text else {
            settings.insert("createOptions".into(), json!({"Env": ["A=1"]}));
            return;
        };
        let chars: Vec<char> = text.chars().collect();
        let pieces = 1 + self.0.below(4);
        let size = chars.len().div_ceil(pieces).max(1);
        for (i, piece) in chars.chunks(size).enumerate() {
            let mut name = if i == 0 {
                "createOptions".to_owned()
            } else {
                format!("createOptions{i:02}")
            };
            if self.0.chance(30) {
                name = format!("CREATEOPTIONS{:02}", i + 1);
            }
            settings.insert(name, Value::String(piece.iter().collect()));
        }
    }

    fn settings(&mut self, docker: bool) -> Value {
        let mut settings = Map::new();
        if docker {
            let image = self.pick(
                &[
                    json!("app"),
                    json!("app:1.0"),
                    json!("localhost:5000/team/app"),
                    json!("$upstream:443/azureiotedge-agent:1.5"),
                ],
                &[json!("app:"), json!(""), json!(5), json!("a:b:c")],
            );
            self.field(&mut settings, "image", image);
            self.create_options(&mut settings);
            if self.0.chance(4) {
                settings.insert("digest".into(), json!("sha256:00"));
            }
        } else {
            let command = self.pick(
                &[json!(["/bin/run"]), json!(["python3", "-m", "app"])],
                &[json!([]), json!([""]), json!("run"), json!([1])],
            );
            self.field(&mut settings, "command", command);
            if self.0.chance(2) {
                settings.insert("workingDir".into(), json!("/var/lib/app"));
            }
        }
        Value::Object(settings)
    }

    fn module(&mut self) -> Value {
        let docker = !self.0.chance(3);
        let mut module = Map::new();
        let kind = if docker { "docker" } else { "process" };
        let kind = self.pick(&[json!(kind)], &[json!("Docker"), json!("vm"), json!(1)]);
        self.field(&mut module, "type", kind);
        let status = self.pick(
            &[json!("running"), json!("stopped"), json!("Running")],
            &[json!("backoff"), json!(null), json!(1)],
        );
        self.field(&mut module, "status", status);
        let policy = self.pick(
            &[
                json!("always"),
                json!("never"),
                json!("on-failure"),
                json!("on-unhealthy"),
            ],
            &[json!("unknown"), json!("sometimes")],
        );
        self.field(&mut module, "restartPolicy", policy);
        let pull = self.pick(&[json!("on-create"), json!("never")], &[json!("always")]);
        self.field(&mut module, "imagePullPolicy", pull);
        let order = self.pick(
            &[json!(0), json!(1), json!(4_294_967_295_u64), json!("7")],
            &[json!(-1), json!(4_294_967_296_u64), json!(1.5)],
        );
        self.field(&mut module, "startupOrder", order);
        let version = self.pick(&[json!("1.0"), json!(2), json!(true)], &[json!([])]);
        self.field(&mut module, "version", version);
        let settings = self.settings(docker);
        self.field(&mut module, "settings", settings);
        let env_value = self.pick(
            &[
                json!({"value": "x"}),
                json!({"value": 0}),
                json!({}),
                json!({"value": -1.5}),
            ],
            &[json!("x"), json!({"value": {}})],
        );
        self.field(&mut module, "env", json!({"A": env_value}));
        Value::Object(module)
    }

    fn agent(&mut self) -> Value {
        let mut doc = Map::new();
        let schema = self.pick(
            &[json!("1.0"), json!("1.1"), json!("1.1.0")],
            &[json!("1.2"), json!("2.0"), json!("x")],
        );
        self.field(&mut doc, "schemaVersion", schema);
        let credentials = self.pick(
            &[
                json!({}),
                json!({"acr": {"address": "a", "username": "u", "password": "p"}}),
            ],
            &[json!({"acr": {"address": "a"}})],
        );
        let runtime = json!({"type": "docker", "settings": {"registryCredentials": credentials}});
        self.field(&mut doc, "runtime", runtime);
        let mut system = Map::new();
        let edge_agent = self.module();
        self.field(&mut system, "edgeAgent", edge_agent);
        let edge_hub = self.module();
        self.field(&mut system, "edgeHub", edge_hub);
        self.field(&mut doc, "systemModules", Value::Object(system));
        let mut modules = Map::new();
        for _ in 0..self.0.below(4) {
            let name = self.pick(
                &[json!("sensor"), json!("filter"), json!("m1"), json!("a.b")],
                &[json!("$x"), json!("edgeHub"), json!("a/b"), json!("")],
            );
            let module = self.module();
            modules.insert(name.as_str().unwrap_or("n").to_owned(), module);
        }
        self.field(&mut doc, "modules", Value::Object(modules));
        Value::Object(doc)
    }

    fn hub(&mut self) -> Value {
        let mut doc = Map::new();
        let schema = self.pick(
            &[json!("1.0"), json!("1.1"), json!("1.2"), json!("1.3")],
            &[json!("1.4"), json!("2")],
        );
        self.field(&mut doc, "schemaVersion", schema);
        let mut routes = Map::new();
        for i in 0..self.0.below(4) {
            let route = self.pick(
                &[
                    json!("FROM /messages/* INTO $upstream"),
                    json!({"route": "FROM /* INTO $upstream", "priority": 0, "timeToLiveSecs": 60}),
                    json!({"route": "FROM /* INTO $upstream", "priority": 2_000_000_000}),
                    json!(""),
                ],
                &[json!({"priority": 10}), json!(5), json!({"route": " "})],
            );
            routes.insert(format!("r{i}"), route);
        }
        self.field(&mut doc, "routes", Value::Object(routes));
        let ttl = self.pick(&[json!(7200), json!(-1)], &[json!(1u64 << 40)]);
        let store = json!({"timeToLiveSecs": ttl, "storeLimits": {"maxSizeBytes": 1000}});
        self.field(&mut doc, "storeAndForwardConfiguration", store);
        if self.0.chance(2) {
            let broker = self.broker();
            doc.insert("mqttBroker".into(), broker);
        }
        Value::Object(doc)
    }

    /// One `allow` or `deny` rule of an `mqttBroker` statement.
    fn rule(&mut self) -> Value {
        let mut rule = Map::new();
        let operation = self.pick(
            &[
                json!("mqtt:connect"),
                json!("mqtt:publish"),
                json!("mqtt:subscribe"),
            ],
            &[json!("mqtt:Publish"), json!(""), json!(null)],
        );
        let resource = self.pick(
            &[
                json!("a/#"),
                json!("+/b"),
                json!("dev/{{iot:device_id}}/#"),
                json!("{{iot:identity}}/{{iot:this_device_id}}"),
                json!("#"),
            ],
            &[json!("a#"), json!("{{mqtt:topic}}"), json!(""), json!({})],
        );
        self.field(&mut rule, "operations", json!([operation]));
        self.field(&mut rule, "resources", json!([resource]));
        Value::Object(rule)
    }

    /// An `mqttBroker` policy of a few statements.
    fn broker(&mut self) -> Value {
        let mut statements = Vec::new();
        for _ in 0..self.0.below(4) {
            let mut statement = Map::new();
            let identity = self.pick(
                &[
                    json!("d1"),
                    json!("edge/m"),
                    json!("{{iot:identity}}"),
                    json!("{{iot:this_device_id}}/{{iot:module_id}}"),
                ],
                &[json!(""), json!("{{iot:hub}}"), json!("a/b/c"), json!([])],
            );
            self.field(&mut statement, "identities", json!([identity]));
            let allow = self.rule();
            self.field(&mut statement, "allow", json!([allow]));
            if self.0.chance(2) {
                let deny = self.rule();
                statement.insert("deny".into(), json!([deny]));
            }
            statements.push(Value::Object(statement));
        }
        let authorizations = self.pick(&[Value::Array(statements)], &[json!({})]);
        json!({ "authorizations": authorizations })
    }

    fn document(&mut self) -> Value {
        match self.0.below(5) {
            0 => self.agent(),
            1 => self.hub(),
            _ => {
                let mut content = Map::new();
                let agent = self.agent();
                self.field(
                    &mut content,
                    "$edgeAgent",
                    json!({"properties.desired": agent}),
                );
                let hub = self.hub();
                self.field(&mut content, "$edgeHub", json!({"properties.desired": hub}));
                content.insert("sensor".into(), json!({"properties.desired": {"k": 1}}));
                if self.0.chance(4) {
                    let layered = self.module();
                    if let Some(Value::Object(agent)) = content.get_mut("$edgeAgent") {
                        agent.insert("properties.desired.modules.layered".into(), layered);
                    }
                    content.insert("other".into(), json!({"properties.desired.a.b": 1}));
                }
                json!({"modulesContent": content})
            }
        }
    }
}

#[test]
fn manifest_corpus_and_random_inputs() {
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "manifest")
        .alphabet(JSON_BYTES)
        .iterations(MUTATIONS)
        .run(SEED, fuzz_manifest);
    let mut manifests = Manifests(Rng::new(SEED));
    let mut accepted = 0;
    for _ in 0..STRUCTURED {
        let doc = manifests.document();
        fuzz_manifest(doc.to_string().as_bytes());
        if Deployment::from_modules_content(&doc).is_ok()
            || AgentDesired::from_twin(&doc).is_ok()
            || HubDesired::from_twin(&doc).is_ok()
        {
            accepted += 1;
        }
    }
    eprintln!("{accepted} of {STRUCTURED} structured manifests accepted");
    assert!(
        accepted * 20 >= STRUCTURED,
        "generator too rarely valid: {accepted}"
    );
}

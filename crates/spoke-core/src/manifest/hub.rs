//! `$edgeHub` desired properties: routes, store-and-forward settings and the MQTT broker
//! policy (edge contracts spec §3.2; edgeHub's `EdgeHubConfigParser`,
//! `EdgeHubDesiredProperties_1_*`, `RouteSpec`, `RouteSpecConverter`,
//! `StoreAndForwardConfiguration`).
//!
//! Schema versions and what each allows:
//! - `1.0`: `routes` optional, each a string; blank and `null` routes are skipped.
//! - `1.1`: `routes` required; each a string or `{route, priority?, timeToLiveSecs?}`.
//! - `1.2`, `1.3`: as 1.1, plus `mqttBroker`, the authorization policy of Azure's experimental
//!   broker, read by [`BrokerPolicy::from_json`] (in 1.0 and 1.1 it is ignored, as edgeHub
//!   ignores it); `integrity` is ignored.
//!
//! In every version `storeAndForwardConfiguration` is required, its `timeToLiveSecs` is a
//! 32-bit integer defaulting to 0 (negative keeps messages forever), and `storeLimits`, when
//! present, holds `maxSizeBytes` (default 0). Route names must not be blank; route text must
//! not be blank (except the skipped 1.0 case). `priority` is 0..=9; edgeHub's internal
//! "no priority" value 2000000000 is accepted and read as absent. `timeToLiveSecs` 0 means
//! "use the global TTL" and is read as absent.
//!
//! Route text is kept as written; the route language is parsed elsewhere.

use std::collections::BTreeMap;

use serde_json::Value;

use super::agent::is_twin_metadata;
use super::broker::BrokerPolicy;
use super::error::{ManifestError, clip};
use super::json::Obj;
use super::schema;

/// The priority edgeHub gives routes that set none (`RouteFactory.DefaultPriority`).
const UNSET_PRIORITY: i64 = 2_000_000_000;

/// The first `$edgeHub` schema minor version with `mqttBroker`.
const BROKER_MINOR: i64 = 2;

/// The highest (numerically largest) route priority a manifest may set.
pub const MAX_ROUTE_PRIORITY: u8 = 9;

/// One route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// The route statement, `FROM ... [WHERE ...] INTO ...`, as written.
    pub text: String,
    /// 0 (highest) ..= 9, or `None` for the lowest priority.
    pub priority: Option<u8>,
    /// Message time-to-live for this route, or `None` for the global one.
    pub ttl_secs: Option<u32>,
}

/// `storeAndForwardConfiguration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreAndForward {
    /// How long undelivered messages are kept, in seconds; negative means forever.
    pub ttl_secs: i64,
    /// `storeLimits.maxSizeBytes`, if store limits are given.
    pub max_size_bytes: Option<u64>,
}

/// The typed `$edgeHub` desired properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubDesired {
    /// `schemaVersion` as written.
    pub schema_version: String,
    /// Routes by name.
    pub routes: BTreeMap<String, RouteSpec>,
    /// Store-and-forward settings.
    pub store_and_forward: StoreAndForward,
    /// The MQTT broker authorization policy: `Some` when the schema is 1.2 or later and
    /// `mqttBroker` is present.
    pub mqtt_broker: Option<BrokerPolicy>,
}

impl HubDesired {
    /// Reads the `$edgeHub` desired properties (with or without `$version`/`$metadata`).
    ///
    /// Azure's edgeHub reports every refusal with `lastDesiredStatus.code` 400, whatever
    /// [`ManifestError::status`] says.
    pub fn from_twin(desired: &Value) -> Result<Self, ManifestError> {
        let doc = Obj::new(desired, "$edgeHub".to_owned())?;
        if doc.entries().all(|(key, _)| is_twin_metadata(key)) {
            return Err(ManifestError::Empty {
                path: doc.path().to_owned(),
            });
        }
        let (schema_version, minor) = schema::hub(&doc)?;
        let routes = match doc.opt_obj("routes")? {
            Some(routes) => parse_routes(&routes, minor == 0)?,
            None if minor == 0 => BTreeMap::new(),
            None => return Err(doc.missing("routes")),
        };
        let store = doc.req_obj("storeAndForwardConfiguration")?;
        let ttl_secs = store
            .opt_int(
                "timeToLiveSecs",
                i32::MIN.into(),
                i32::MAX.into(),
                "a 32-bit integer",
            )?
            .unwrap_or(0);
        let max_size_bytes = match store.opt_obj("storeLimits")? {
            Some(limits) => Some(
                limits
                    .opt_int("maxSizeBytes", 0, i64::MAX, "a non-negative integer")?
                    .map_or(0, |n| n as u64),
            ),
            None => None,
        };
        let mqtt_broker = match doc.get("mqttBroker") {
            Some(broker) if minor >= BROKER_MINOR => {
                Some(BrokerPolicy::from_json(broker, &doc.path_of("mqttBroker"))?)
            }
            _ => None,
        };
        Ok(HubDesired {
            schema_version,
            routes,
            store_and_forward: StoreAndForward {
                ttl_secs,
                max_size_bytes,
            },
            mqtt_broker,
        })
    }
}

/// Reads `routes`; `legacy` is schema 1.0 (strings only, blank ones skipped).
fn parse_routes(
    routes: &Obj<'_>,
    legacy: bool,
) -> Result<BTreeMap<String, RouteSpec>, ManifestError> {
    let mut out = BTreeMap::new();
    for (name, value) in routes.entries() {
        if name.trim().is_empty() {
            return Err(ManifestError::InvalidValue {
                path: routes.path().to_owned(),
                found: format!("{:?}", clip(name)),
                expected: "route names that are not blank",
            });
        }
        let spec = match value {
            Value::Null if legacy => continue,
            Value::String(text) if legacy && text.trim().is_empty() => continue,
            Value::String(text) if !text.trim().is_empty() => RouteSpec {
                text: text.clone(),
                priority: None,
                ttl_secs: None,
            },
            Value::String(_) => {
                return Err(routes.invalid(name, value, "a route statement FROM ... INTO ..."));
            }
            Value::Object(_) if !legacy => {
                parse_route_object(&Obj::new(value, routes.path_of(name))?)?
            }
            _ => {
                return Err(ManifestError::WrongType {
                    path: routes.path_of(name),
                    expected: if legacy {
                        "a route string (schema 1.0)"
                    } else {
                        "a route string or {\"route\": ..., \"priority\": ..., \"timeToLiveSecs\": ...}"
                    },
                });
            }
        };
        out.insert(name.clone(), spec);
    }
    Ok(out)
}

/// Reads a route object `{route, priority?, timeToLiveSecs?}`.
fn parse_route_object(route: &Obj<'_>) -> Result<RouteSpec, ManifestError> {
    let text = route.req_str("route")?.to_owned();
    let priority = match route.opt_int("priority", 0, u32::MAX.into(), "0..=9")? {
        None | Some(UNSET_PRIORITY) => None,
        Some(p) if p <= MAX_ROUTE_PRIORITY.into() => Some(p as u8),
        Some(p) => return Err(route.invalid("priority", &Value::from(p), "0..=9")),
    };
    let ttl_secs = route
        .opt_int(
            "timeToLiveSecs",
            0,
            u32::MAX.into(),
            "an integer 0..=4294967295",
        )?
        .filter(|&ttl| ttl != 0)
        .map(|ttl| ttl as u32);
    Ok(RouteSpec {
        text,
        priority,
        ttl_secs,
    })
}

//! The compiled routes of one edge hub and the routing decision for a message (spec §3.2,
//! edgeHub's `Evaluator`).
//!
//! Invariants: routes are kept in name order (the order of the `$edgeHub` `routes` map);
//! [`RouteTable::destinations`] lists each sink at most once, in [`Sink`] order, with the
//! route of the highest priority (lowest number) among those that matched, the first in
//! name order on a tie, and that route's TTL.

use std::collections::BTreeMap;

use super::eval::Scope;
use super::{MessageSource, Route, RouteError, Sink};
use crate::manifest::HubDesired;
use crate::message::Message;

/// Where one message goes: a sink and the route that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The endpoint.
    pub sink: Sink,
    /// The name of the route that wins for this sink.
    pub route: String,
    /// That route's priority (0 highest, [`super::DEFAULT_PRIORITY`] when unset).
    pub priority: u8,
    /// That route's TTL, or `None` for the global store-and-forward TTL.
    pub ttl_secs: Option<u32>,
}

/// The compiled routes of an edge hub.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Compiles every route of the `$edgeHub` desired properties; the first route that does
    /// not compile is the error (it names the route and the position in its text).
    pub fn compile(desired: &HubDesired) -> Result<Self, RouteError> {
        let routes = desired
            .routes
            .iter()
            .map(|(name, spec)| Route::from_spec(name, spec))
            .collect::<Result<_, _>>()?;
        Ok(Self { routes })
    }

    /// A table of already compiled routes, kept in name order.
    pub fn from_routes(mut routes: Vec<Route>) -> Self {
        routes.sort_by(|a, b| a.name.cmp(&b.name));
        Self { routes }
    }

    /// The routes, in name order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Every sink `msg` from `source` goes to, once per sink: when several routes reach the
    /// same sink, the highest priority (lowest number) wins, with its TTL.
    pub fn destinations(&self, source: &MessageSource, msg: &Message) -> Vec<Destination> {
        let scope = Scope::new(msg);
        let mut best: BTreeMap<&Sink, &Route> = BTreeMap::new();
        for route in self.routes.iter().filter(|r| r.matches_in(source, &scope)) {
            best.entry(&route.sink)
                .and_modify(|current| {
                    if route.priority < current.priority {
                        *current = route;
                    }
                })
                .or_insert(route);
        }
        best.into_iter()
            .map(|(sink, route)| Destination {
                sink: sink.clone(),
                route: route.name.clone(),
                priority: route.priority,
                ttl_secs: route.ttl_secs,
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;

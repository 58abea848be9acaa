//! One destination as built from its config: its plugin (routing, mapping, wire format,
//! transport), its transform plugin chains and its delivery settings, in one object. The pipeline
//! routes through it, delivery sends through it; neither knows which platform it is.

use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use switchyard_core::destination::{
    ClientActions, Delivery, DestinationPlugin, Transport, TransportError,
};
use switchyard_core::event::SourceEvent;
use switchyard_core::router::{self, Extras, Outcome, Status};
use switchyard_wasm::Chain;

/// Which copies of an event routing builds: the server side's always (`Outcome::data`, and the
/// names of the browser side's events in `Outcome::client`); the browser side's event objects
/// (`Outcome::client_data`) only where a browser waits for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copies {
    /// Delivery: the server copy only.
    Server,
    /// `POST /v1/collect` and `map`: the browser copy too.
    ServerAndBrowser,
}

impl From<Copies> for Extras {
    /// The copies asked for, and no count of field use (only `map` asks for it).
    fn from(copies: Copies) -> Self {
        Extras {
            client_data: copies == Copies::ServerAndBrowser,
            field_use: false,
        }
    }
}

/// A configured destination, ready to route and send.
pub struct Destination {
    plugin: Box<dyn DestinationPlugin>,
    /// Its `transforms`: on its events, before the mapping.
    pub transforms: Chain,
    /// Its `payload_transforms`: on each platform payload, after the mapping.
    pub payload_transforms: Chain,
    /// Rate and concurrency limits, timeout and retries.
    pub delivery: Delivery,
    /// Whether it forwards: its `status` in the file, switched at run time by the admin API
    /// (one relaxed load per event and destination).
    active: AtomicBool,
}

/// The reason of an event not routed to a destination switched off at run time.
pub const DEACTIVATED: &str = "destination deactivated";

impl Destination {
    pub fn new(
        plugin: Box<dyn DestinationPlugin>,
        transforms: Chain,
        payload_transforms: Chain,
        delivery: Delivery,
    ) -> Self {
        let active =
            plugin.routing().activation == switchyard_core::destination::Activation::Active;
        Self {
            plugin,
            transforms,
            payload_transforms,
            delivery,
            active: AtomicBool::new(active),
        }
    }

    /// Its unique name (output, metrics, logs, dead letters).
    pub fn name(&self) -> &str {
        &self.plugin.routing().name
    }

    pub fn plugin(&self) -> &dyn DestinationPlugin {
        self.plugin.as_ref()
    }

    /// Whether it forwards anything (`status: active`, unless switched at run time).
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Switches it on or off at run time (until the config is reloaded); says whether it was
    /// active before.
    pub fn set_active(&self, active: bool) -> bool {
        self.active.swap(active, Ordering::Relaxed)
    }

    /// Whether any transform plugin runs on its events or payloads.
    pub fn has_plugins(&self) -> bool {
        !self.transforms.is_empty() || !self.payload_transforms.is_empty()
    }

    /// What becomes of `event` from `source` here, with the `extras` asked for.
    pub fn route<'a>(
        &'a self,
        event: &'a SourceEvent,
        source: &str,
        extras: Extras,
    ) -> Outcome<'a> {
        if !self.is_active() {
            return Outcome::not_sent(self.name(), Status::Deactivated, DEACTIVATED.into());
        }
        router::route(self.plugin(), event, source, extras)
    }

    /// The request bodies that carry `payloads`, in batches of at most [`Destination::max_batch`].
    pub fn request_bodies(&self, payloads: Vec<Value>) -> Vec<Value> {
        let size = self.plugin.max_batch().max(1);
        let mut payloads = payloads.into_iter().peekable();
        let mut bodies = Vec::new();
        while payloads.peek().is_some() {
            bodies.push(
                self.plugin
                    .request_body(payloads.by_ref().take(size).collect()),
            );
        }
        bodies
    }

    /// Events per request at most.
    pub fn max_batch(&self) -> usize {
        self.plugin.max_batch().max(1)
    }

    /// The transport that sends its request bodies (fails without the secrets sending needs).
    pub fn transport(&self) -> Result<Box<dyn Transport>, TransportError> {
        self.plugin.transport()
    }

    /// The pixel calls of one routed event here, from its browser copies (after the payload
    /// plugins: route it with [`Copies::ServerAndBrowser`]); `None` when it fires nothing here.
    /// `POST /v1/collect`, the preview and the journal all read them from here.
    pub fn client_actions(
        &self,
        event: &SourceEvent,
        outcome: &Outcome<'_>,
    ) -> Option<ClientActions> {
        if outcome.status != Status::Sent || outcome.client_data.is_empty() {
            return None;
        }
        let payloads: Vec<Value> = outcome.client_payloads().map(|p| p.to_value()).collect();
        self.plugin.client_actions(event, &payloads)
    }
}

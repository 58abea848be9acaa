//! Write a Switchyard transform plugin as one function over a typed event.
//!
//! ```ignore
//! use switchyard_plugin_sdk::{Action, Error, Event, Plugin, plugin};
//!
//! #[derive(serde::Deserialize)]
//! struct Config { tag: String }
//!
//! struct Tagger { tag: String }
//!
//! impl Plugin for Tagger {
//!     type Config = Config;
//!     type Event = Event;
//!     fn new(config: Config) -> Result<Self, Error> { Ok(Self { tag: config.tag }) }
//!     fn transform(&self, mut event: Event) -> Result<Action<Event>, Error> {
//!         event.properties.insert("tag".into(), self.tag.clone().into());
//!         Ok(Action::Changed(event))
//!     }
//! }
//!
//! plugin!(Tagger);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm` in
//! `target/wasm32-wasip2/release/` is the plugin. The contract is `wit/plugin.wit` (a copy of the
//! host's `engine/wasm/wit/plugin.wit`, kept equal by a test).

/// The bindings generated from `wit/plugin.wit`, for plugins that want the raw contract
/// (JSON text in and out, no parsing): implement [`bindings::Guest`] and call [`export!`].
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "transform",
        pub_export_macro: true,
        default_bindings_module: "switchyard_plugin_sdk::bindings",
    });
}

use bindings::Action as RawAction;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
pub use serde_json::{self, Map, Value, json};
use std::sync::OnceLock;

/// A source event of the event spec, as pipeline and destination plugins receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_name: String,
    pub event_id: String,
    #[serde(default)]
    pub properties: Map<String, Value>,
    #[serde(default)]
    pub profile_properties: Map<String, Value>,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Unix seconds (the host has normalised it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Value>,
    /// Any other top-level field, kept as is.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// What the plugin does with an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<E> {
    /// Keep the event as it came (cheapest: nothing is sent back).
    Unchanged,
    /// Send this event instead.
    Changed(E),
    /// Send these events instead (none is like `Drop` without a reason).
    Split(Vec<E>),
    /// Drop the event, with the reason the host reports.
    Drop(String),
}

/// A plugin error: fails the event (or refuses the config) with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self(e.to_string())
    }
}

/// A transform plugin.
pub trait Plugin: Sized + Send + Sync + 'static {
    /// The plugin's `config` from the YAML, deserialized.
    type Config: DeserializeOwned;
    /// The event type: [`Event`] for pipeline and destination plugins, [`Value`] for payload
    /// plugins (or any serde type of your own).
    type Event: DeserializeOwned + Serialize;

    /// Called once per instance with the config. An error refuses the config.
    fn new(config: Self::Config) -> Result<Self, Error>;

    /// Called for every event.
    fn transform(&self, event: Self::Event) -> Result<Action<Self::Event>, Error>;
}

/// Logging through the host, tagged with the plugin's name.
pub mod log {
    use super::bindings::{Level, log};
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

#[doc(hidden)]
pub fn __init<P: Plugin>(slot: &OnceLock<P>, config: &str) -> Result<(), String> {
    let config: P::Config = serde_json::from_str(config).map_err(|e| format!("config: {e}"))?;
    let plugin = P::new(config).map_err(|e| e.0)?;
    slot.set(plugin)
        .map_err(|_| "init was called twice".to_owned())
}

#[doc(hidden)]
pub fn __transform<P: Plugin>(slot: &OnceLock<P>, event: &str) -> Result<RawAction, String> {
    let plugin = slot.get().ok_or("transform before init")?;
    let event: P::Event = serde_json::from_str(event).map_err(|e| format!("event: {e}"))?;
    let to_json = |e: &P::Event| serde_json::to_string(e).map_err(|e| e.to_string());
    Ok(match plugin.transform(event).map_err(|e| e.0)? {
        Action::Unchanged => RawAction::Unchanged,
        Action::Changed(e) => RawAction::Changed(to_json(&e)?),
        Action::Split(list) => {
            RawAction::Split(list.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Action::Drop(reason) => RawAction::Drop(reason),
    })
}

/// Exports a type implementing [`Plugin`] as the plugin of this crate.
#[macro_export]
macro_rules! plugin {
    ($plugin:ty) => {
        struct __SwitchyardPlugin;
        static __SWITCHYARD_PLUGIN: ::std::sync::OnceLock<$plugin> = ::std::sync::OnceLock::new();
        impl $crate::bindings::Guest for __SwitchyardPlugin {
            fn init(config: String) -> Result<(), String> {
                $crate::__init(&__SWITCHYARD_PLUGIN, &config)
            }
            fn transform(event: String) -> Result<$crate::bindings::Action, String> {
                $crate::__transform(&__SWITCHYARD_PLUGIN, &event)
            }
            fn transform_batch(events: Vec<String>) -> Vec<Result<$crate::bindings::Action, String>> {
                events.iter().map(|e| $crate::__transform(&__SWITCHYARD_PLUGIN, e)).collect()
            }
        }
        $crate::bindings::export!(__SwitchyardPlugin with_types_in $crate::bindings);
    };
}

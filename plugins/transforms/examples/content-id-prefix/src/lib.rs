//! A payload plugin (declared in a destination's `payload_transforms`): makes TikTok's content ids
//! match a catalogue whose ids carry a prefix, e.g. `shopify_US_` + variant id. It works on the
//! TikTok event object the mapping built, so it sees `properties.contents[].content_id`.
//!
//! ```yaml
//! config:
//!   prefix: shopify_US_
//! ```

use serde::Deserialize;
use switchyard_plugin_sdk::{Action, Error, Plugin, Value, plugin};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    prefix: String,
}

struct Prefixer {
    prefix: String,
}

impl Plugin for Prefixer {
    type Config = Config;
    type Event = Value;

    fn new(config: Config) -> Result<Self, Error> {
        if config.prefix.is_empty() {
            return Err(Error::new("`prefix` must not be empty"));
        }
        Ok(Self {
            prefix: config.prefix,
        })
    }

    fn transform(&self, mut payload: Value) -> Result<Action<Value>, Error> {
        let Some(contents) = payload
            .pointer_mut("/properties/contents")
            .and_then(Value::as_array_mut)
        else {
            return Ok(Action::Unchanged);
        };
        let mut changed = false;
        for id in contents.iter_mut().filter_map(|c| c.get_mut("content_id")) {
            if let Some(text) = id.as_str()
                && !text.starts_with(&self.prefix)
            {
                *id = Value::String(format!("{}{text}", self.prefix));
                changed = true;
            }
        }
        Ok(if changed {
            Action::Changed(payload)
        } else {
            Action::Unchanged
        })
    }
}

plugin!(Prefixer);

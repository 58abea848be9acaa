//! Removes personal data a destination must not get: the listed profile properties, the same keys
//! inside `properties`, and the listed query parameters of `$url` and `referrer`.
//!
//! ```yaml
//! config:
//!   fields: ["$first_name", "$last_name", "$city", "$zip_code"]   # default
//!   query_params: [email, phone]                                  # default
//! ```

use serde::Deserialize;
use switchyard_plugin_sdk::{Action, Error, Event, Plugin, Value, log, plugin};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_fields")]
    fields: Vec<String>,
    #[serde(default = "default_params")]
    query_params: Vec<String>,
}

fn default_fields() -> Vec<String> {
    ["$first_name", "$last_name", "$city", "$zip_code"]
        .map(String::from)
        .to_vec()
}

fn default_params() -> Vec<String> {
    ["email", "phone"].map(String::from).to_vec()
}

struct Scrubber {
    config: Config,
}

/// `url` without the query parameters named in `params` (other parameters kept in order).
fn scrub_url(url: &str, params: &[String]) -> Option<String> {
    let (base, rest) = url.split_once('?')?;
    let (query, fragment) = match rest.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (rest, None),
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            !params
                .iter()
                .any(|p| pair.split('=').next() == Some(p.as_str()))
        })
        .collect();
    if kept.len() == query.split('&').count() {
        return None;
    }
    let mut out = base.to_owned();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Some(out)
}

impl Plugin for Scrubber {
    type Config = Config;
    type Event = Event;

    fn new(config: Config) -> Result<Self, Error> {
        Ok(Self { config })
    }

    fn transform(&self, mut event: Event) -> Result<Action<Event>, Error> {
        let mut removed = 0;
        for field in &self.config.fields {
            removed += usize::from(event.profile_properties.remove(field).is_some());
            removed += usize::from(event.properties.remove(field).is_some());
        }
        for key in ["$url", "referrer"] {
            let scrubbed = event
                .properties
                .get(key)
                .and_then(Value::as_str)
                .and_then(|u| scrub_url(u, &self.config.query_params));
            if let Some(url) = scrubbed {
                event.properties.insert(key.into(), Value::String(url));
                removed += 1;
            }
        }
        if removed == 0 {
            return Ok(Action::Unchanged);
        }
        log::debug(&format!("removed {removed} personal fields"));
        Ok(Action::Changed(event))
    }
}

plugin!(Scrubber);

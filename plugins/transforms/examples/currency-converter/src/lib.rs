//! Converts an event's amounts into one currency, with rates from the config.
//!
//! ```yaml
//! config:
//!   to: EUR
//!   rates: { USD: 0.92, GBP: 1.17 }   # units of `to` per unit of each currency
//! ```
//! Converts `total_price`, `total_tax`, `total_shipping`, `total_discount`, `price` and every
//! `items[].price`, rounds to cents, and sets `currency`. An event in a currency without a rate fails
//! (a wrong amount is worse than none); an event without `currency` or already in `to` is unchanged.

use serde::Deserialize;
use std::collections::HashMap;
use switchyard_plugin_sdk::{Action, Error, Event, Map, Plugin, Value, plugin};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    to: String,
    rates: HashMap<String, f64>,
}

struct Converter {
    to: String,
    rates: HashMap<String, f64>,
}

const AMOUNTS: [&str; 5] = [
    "total_price",
    "total_tax",
    "total_shipping",
    "total_discount",
    "price",
];

fn convert(map: &mut Map<String, Value>, key: &str, rate: f64) {
    let amount = match map.get(key) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    if let Some(a) = amount {
        map.insert(
            key.to_owned(),
            Value::from(((a * rate) * 100.0).round() / 100.0),
        );
    }
}

impl Plugin for Converter {
    type Config = Config;
    type Event = Event;

    fn new(config: Config) -> Result<Self, Error> {
        if let Some((code, rate)) = config
            .rates
            .iter()
            .find(|(_, r)| !r.is_finite() || **r <= 0.0)
        {
            return Err(Error::new(format!(
                "rate of {code} must be a positive number, found {rate}"
            )));
        }
        Ok(Self {
            to: config.to,
            rates: config.rates,
        })
    }

    fn transform(&self, mut event: Event) -> Result<Action<Event>, Error> {
        let Some(from) = event
            .properties
            .get("currency")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return Ok(Action::Unchanged);
        };
        if from == self.to {
            return Ok(Action::Unchanged);
        }
        let rate = *self
            .rates
            .get(&from)
            .ok_or_else(|| Error::new(format!("no rate from {from} to {}", self.to)))?;
        for key in AMOUNTS {
            convert(&mut event.properties, key, rate);
        }
        if let Some(Value::Array(items)) = event.properties.get_mut("items") {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                convert(item, "price", rate);
            }
        }
        event
            .properties
            .insert("currency".into(), Value::String(self.to.clone()));
        Ok(Action::Changed(event))
    }
}

plugin!(Converter);

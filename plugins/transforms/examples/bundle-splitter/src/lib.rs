//! Splits bundles into the products they are made of, so ad platforms see the real catalogue ids.
//!
//! ```yaml
//! config:
//!   bundles:
//!     KIT-1:                                   # the bundle's sku (or product_id)
//!       - { product_id: "p1", sku: "S1", name: "Shirt", share: 0.6 }
//!       - { product_id: "p2", sku: "S2", name: "Cap", share: 0.4, quantity: 2 }
//! ```
//! In `items[]` (orders, checkouts), a bundle item becomes its parts: price split by `share`,
//! quantity multiplied. A single-product event (`Added To Cart`) of a bundle becomes one event per
//! part, with `event_id` suffixed `:1`, `:2`, ... so each stays unique.

use serde::Deserialize;
use std::collections::HashMap;
use switchyard_plugin_sdk::{Action, Error, Event, Map, Plugin, Value, plugin};

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Part {
    product_id: String,
    #[serde(default)]
    sku: Option<String>,
    #[serde(default)]
    name: Option<String>,
    share: f64,
    #[serde(default = "one")]
    quantity: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    bundles: HashMap<String, Vec<Part>>,
}

struct Splitter {
    bundles: HashMap<String, Vec<Part>>,
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Splitter {
    fn bundle_of(&self, product: &Map<String, Value>) -> Option<&Vec<Part>> {
        ["sku", "product_id"]
            .iter()
            .filter_map(|k| product.get(*k).and_then(Value::as_str))
            .find_map(|id| self.bundles.get(id))
    }

    /// The parts of a bundle product, as product objects.
    fn parts(product: &Map<String, Value>, parts: &[Part]) -> Vec<Map<String, Value>> {
        let price = number(product.get("price"));
        let quantity = number(product.get("quantity")).unwrap_or(1.0);
        parts
            .iter()
            .map(|part| {
                let mut p = product.clone();
                p.remove("variant_id");
                p.insert("product_id".into(), part.product_id.clone().into());
                match &part.sku {
                    Some(s) => p.insert("sku".into(), s.clone().into()),
                    None => p.remove("sku"),
                };
                if let Some(n) = &part.name {
                    p.insert("name".into(), n.clone().into());
                }
                if let Some(price) = price {
                    let unit = price * part.share / part.quantity;
                    p.insert("price".into(), Value::from((unit * 100.0).round() / 100.0));
                }
                p.insert("quantity".into(), Value::from(quantity * part.quantity));
                p
            })
            .collect()
    }
}

impl Plugin for Splitter {
    type Config = Config;
    type Event = Event;

    fn new(config: Config) -> Result<Self, Error> {
        for (bundle, parts) in &config.bundles {
            let total: f64 = parts.iter().map(|p| p.share).sum();
            if parts.is_empty() || (total - 1.0).abs() > 1e-6 {
                return Err(Error::new(format!(
                    "bundle {bundle}: shares must add up to 1, found {total}"
                )));
            }
        }
        Ok(Self {
            bundles: config.bundles,
        })
    }

    fn transform(&self, mut event: Event) -> Result<Action<Event>, Error> {
        if let Some(Value::Array(items)) = event.properties.get("items") {
            let mut changed = false;
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item
                    .as_object()
                    .and_then(|o| self.bundle_of(o).map(|b| (o, b)))
                {
                    Some((product, parts)) => {
                        changed = true;
                        out.extend(Self::parts(product, parts).into_iter().map(Value::Object));
                    }
                    None => out.push(item.clone()),
                }
            }
            if !changed {
                return Ok(Action::Unchanged);
            }
            event.properties.insert("items".into(), Value::Array(out));
            return Ok(Action::Changed(event));
        }
        let Some(parts) = self.bundle_of(&event.properties) else {
            return Ok(Action::Unchanged);
        };
        let events = Self::parts(&event.properties, parts)
            .into_iter()
            .enumerate()
            .map(|(i, properties)| Event {
                event_id: format!("{}:{}", event.event_id, i + 1),
                properties,
                ..event.clone()
            })
            .collect();
        Ok(Action::Split(events))
    }
}

plugin!(Splitter);

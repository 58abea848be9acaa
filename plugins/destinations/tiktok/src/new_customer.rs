//! The first-order flag: the event spec says a `Placed Order` carries `$is_new_customer`, and the
//! default mapping sends `NewCustomerPurchase` beside `Purchase` only when it is `true` (the
//! boolean: the text `"true"` is not). An order whose flag is missing, or is no boolean, is still
//! sent, with a warning: without one, a shop that never sends the flag would never learn why
//! TikTok gets no `NewCustomerPurchase`. `false` is a flag like `true`: no warning.

use serde_json::Value;
use switchyard_core::event::SourceEvent;
use switchyard_core::rules::warning::Warning;

/// The source event that must carry the flag.
pub const PLACED_ORDER: &str = "Placed Order";

/// The event field the flag is in, as warnings name it.
const FLAG: &str = "properties.$is_new_customer";

/// Warns (once per event, however many rows it builds) when `event` is a `Placed Order` whose
/// flag is missing or not `true` or `false`. Names the type found, never the value.
pub fn check(event: &SourceEvent, warnings: &mut Vec<Warning>) {
    if event.name() != PLACED_ORDER {
        return;
    }
    let flag = event
        .as_value()
        .get("properties")
        .and_then(|p| p.get("$is_new_customer"));
    macro_rules! not_a_flag {
        ($found:literal) => {
            concat!(
                $found,
                ", not true or false: only true sends NewCustomerPurchase"
            )
        };
    }
    let message = match flag {
        Some(Value::Bool(_)) => return,
        None => {
            "missing: a Placed Order says whether it is the customer's first (true or false); \
             without it no NewCustomerPurchase is sent"
        }
        Some(Value::Null) => not_a_flag!("null"),
        Some(Value::String(_)) => not_a_flag!("text"),
        Some(Value::Number(_)) => not_a_flag!("a number"),
        Some(Value::Array(_)) => not_a_flag!("an array"),
        Some(Value::Object(_)) => not_a_flag!("an object"),
    };
    if warnings.iter().any(|w| &*w.field == FLAG) {
        return;
    }
    warnings.push(Warning {
        field: FLAG.into(),
        message,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn warnings_of(name: &str, properties: Value) -> Vec<Warning> {
        let event = json!({"event_name": name, "event_id": "o-1", "timestamp": 1725280000,
                           "properties": properties, "profile_properties": {},
                           "aliases": ["urn:email:a@example.com"]});
        let event = SourceEvent::from_value(event, 0).expect("a valid event");
        let mut warnings = Vec::new();
        check(&event, &mut warnings);
        check(&event, &mut warnings); // a second row of the same event
        warnings
    }

    #[test]
    fn a_placed_order_without_its_flag_is_warned_about_once() {
        let warnings = warnings_of(PLACED_ORDER, json!({"id": 1}));
        assert_eq!(warnings.len(), 1);
        assert_eq!(&*warnings[0].field, "properties.$is_new_customer");
        assert!(warnings[0].message.starts_with("missing"));
    }

    #[test]
    fn true_and_false_are_flags_and_other_types_are_named() {
        for flag in [json!(true), json!(false)] {
            let warnings = warnings_of(PLACED_ORDER, json!({"$is_new_customer": flag}));
            assert!(warnings.is_empty(), "{warnings:?}");
        }
        for (flag, found) in [
            (json!("true"), "text"),
            (json!(1), "a number"),
            (json!(null), "null"),
            (json!([true]), "an array"),
        ] {
            let warnings = warnings_of(PLACED_ORDER, json!({"$is_new_customer": flag}));
            assert_eq!(warnings.len(), 1);
            assert!(warnings[0].message.starts_with(found), "{warnings:?}");
        }
    }

    #[test]
    fn other_events_need_no_flag() {
        assert!(warnings_of("Started Checkout", json!({})).is_empty());
    }
}

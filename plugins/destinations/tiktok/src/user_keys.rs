//! The keys of TikTok's `user` object (its matching keys), and the check that nothing else goes
//! there. A key TikTok does not take (`user.Email`, `user.phone_number`) is no match for anyone,
//! and it would carry a customer's e-mail or phone number to TikTok unhashed: a mapping that sets
//! one is refused at load ([`unknown_message`], through [`crate::hashed::in_mapping`]), and one in
//! what a payload plugin returned is left out with a warning ([`settle_returned`]).

use crate::types::USER_FIELDS;
use serde_json::{Map, Value};
use std::sync::Arc;
use switchyard_core::load::closest;
use switchyard_core::rules::warning::Warning;

/// The payload fields TikTok takes only as SHA-256 digests (of the normalised value).
pub const HASHED_FIELDS: [&str; 6] = [
    "user.email",
    "user.phone",
    "user.external_id",
    "user.first_name",
    "user.last_name",
    "user.zip_code",
];

/// Whether TikTok's `user` object takes `key` (`email`, `ip`, ...).
pub fn is_user_key(key: &str) -> bool {
    hashed_keys().any(|k| k == key) || USER_FIELDS.iter().any(|(k, _)| *k == key)
}

/// The hashed keys (`email`, ...), without their `user.`.
fn hashed_keys() -> impl Iterator<Item = &'static str> {
    HASHED_FIELDS
        .iter()
        .map(|field| field.trim_start_matches("user."))
}

/// Why a mapping's field `label` (`user.Email`) is refused, when it is a key under `user` that
/// TikTok does not take: with the key meant, when one is close.
pub fn unknown_message(label: &str) -> Option<String> {
    let key = label.strip_prefix("user.")?;
    if is_user_key(key) {
        return None;
    }
    let hashed: Vec<&str> = hashed_keys().collect();
    let plain: Vec<&str> = USER_FIELDS.iter().map(|(k, _)| *k).collect();
    let every: Vec<&str> = hashed.iter().chain(&plain).copied().collect();
    let lower = key.to_ascii_lowercase();
    let meant = every
        .iter()
        .find(|k| **k == lower)
        .copied()
        .or_else(|| closest(key, &every));
    let hint = meant.map_or_else(String::new, |k| format!("did you mean `user.{k}`? "));
    Some(format!(
        "TikTok's `user` takes no `{key}`: {hint}its keys are `{}` (sent as SHA-256 digests) and \
         `{}`; a key TikTok does not take matches no one, and its value would reach TikTok unhashed",
        hashed.join("`, `"),
        plain.join("`, `"),
    ))
}

/// Leaves out of the `user` object of an event object a payload plugin returned every key TikTok
/// does not take, each with a warning: its value (`Email`: an address in plain text) would reach
/// TikTok unhashed.
pub fn settle_returned(object: &mut Map<String, Value>, warnings: &mut Vec<Warning>) {
    let Some(Value::Object(user)) = object.get_mut("user") else {
        return;
    };
    user.retain(|key, _| {
        let known = is_user_key(key);
        if !known {
            warnings.push(Warning {
                field: Arc::from(format!("user.{key}")),
                message: "not a matching key TikTok takes (a payload plugin returned it): left \
                          out, as its value would reach TikTok unhashed",
            });
        }
        known
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_matching_key_is_known_and_nothing_else() {
        for key in [
            "email",
            "phone",
            "external_id",
            "first_name",
            "last_name",
            "zip_code",
            "ip",
            "user_agent",
            "ttclid",
            "ttp",
            "locale",
            "city",
            "state",
            "country",
        ] {
            assert!(is_user_key(key), "{key}");
            assert_eq!(unknown_message(&format!("user.{key}")), None, "{key}");
        }
        for key in ["Email", "phone_number", "email.value", "", "user"] {
            assert!(!is_user_key(key), "{key}");
        }
        assert_eq!(unknown_message("properties.Email"), None);
        assert_eq!(unknown_message("email"), None);
    }

    #[test]
    fn an_unknown_key_names_the_key_meant() {
        let says = |label| unknown_message(label).expect("refused");
        assert!(says("user.Email").contains("did you mean `user.email`?"));
        assert!(says("user.phone_number").contains("did you mean `user.phone`?"));
        assert!(says("user.zip").contains("did you mean `user.zip_code`?"));
        let far = says("user.loyalty_tier");
        assert!(!far.contains("did you mean"), "{far}");
        assert!(far.starts_with("TikTok's `user` takes no `loyalty_tier`: its keys are `email`"));
        assert!(
            far.contains("`country`; a key TikTok does not take"),
            "{far}"
        );
    }

    #[test]
    fn a_plugins_unknown_user_keys_are_left_out_with_a_warning() {
        let mut object = json!({"event": "Purchase", "user": {
            "Email": "someone@example.com", "ip": "203.0.113.7", "phone_number": "+31612345678"
        }, "Email": "kept: not under user"});
        let mut warnings = Vec::new();
        settle_returned(object.as_object_mut().unwrap(), &mut warnings);
        assert_eq!(
            object,
            json!({"event": "Purchase", "user": {"ip": "203.0.113.7"}, "Email": "kept: not under user"})
        );
        let fields: Vec<&str> = warnings.iter().map(|w| &*w.field).collect();
        assert_eq!(fields, ["user.Email", "user.phone_number"]);
    }
}

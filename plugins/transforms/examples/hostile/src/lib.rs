//! A plugin that misbehaves on purpose, in the way its config says, so the tests can show the host
//! survives each: `loop` (never returns), `grow` (allocates without bound), `trap` (panics),
//! `huge` (returns a very large event), `malformed` (returns text that is not JSON), `wrong-count`
//! (returns fewer results than events), `refuse` (refuses its config), `fail` (an error per event),
//! `picky` (panics only on events that contain `boom`), `drop` (drops every event), `mistyped`
//! (returns, as a payload plugin, a TikTok event object with fields TikTok would refuse: values of
//! the wrong type, matching keys that are not hashed), `unhashed-user` (returns an event whose
//! `user` holds nothing TikTok may get), `iso-time` (returns an event whose `event_time` is ISO-8601
//! text, and one whose `event_time` is no time), `forge-log` (logs a line break and a terminal
//! escape, as if to forge the engine's own log lines).

use std::sync::OnceLock;
use switchyard_plugin_sdk::bindings::{Action, Guest, export};

static MODE: OnceLock<String> = OnceLock::new();

/// What `mistyped` returns: an e-mail in plain text, an upper-case digest, an id that is a number,
/// an IP address in a list, a value and a price that are text (one a number, one not), a
/// `content_id` that is a number, a time that is text, keys TikTok's `user` does not take
/// (`Email`, `phone_number`, in plain text), and fields without a value.
const MISTYPED: &str = r#"{"event":"CompletePayment","event_id":"o-1","event_time":"1725278400",
"user":{"email":"someone@example.com","phone":"8C87B489CE35CF2E2F39F80E282CB2E804932A56A213983EEEB428407D43B52D",
"external_id":42,"ip":["203.0.113.7"],"user_agent":"Mozilla/5.0","Email":"someone@example.com",
"phone_number":"+31612345678"},"page":{"url":" ","referrer":""},
"properties":{"value":"19.90","currency":"EUR","description":"","contents":[{"content_id":5,"price":"cheap","quantity":1},{}]}}"#;

/// What `unhashed-user` returns: a `user` whose every key is left out (one TikTok does not take,
/// one not hashed), so that nothing of it may be sent, not even `{}`.
const UNHASHED_USER: &str = r#"{"event":"CompletePayment","event_id":"o-1","event_time":1725278400,
"user":{"Email":"someone@example.com","email":"someone@example.com"}}"#;

/// What `iso-time` returns: two event objects (a split), one whose `event_time` is ISO-8601 text
/// with an offset, one whose `event_time` is text that is no time.
const ISO_TIME: [&str; 2] = [
    r#"{"event":"CompletePayment","event_id":"o-1","event_time":"2024-09-02T14:00:00+02:00"}"#,
    r#"{"event":"CompletePayment","event_id":"o-2","event_time":"yesterday"}"#,
];

struct Hostile;

fn mode() -> &'static str {
    MODE.get().map(String::as_str).unwrap_or("")
}

fn misbehave(event: &str) -> Result<Action, String> {
    match mode() {
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "grow" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "trap" => panic!("hostile plugin panics on purpose"),
        "picky" if event.contains("boom") => panic!("picky plugin panics on boom"),
        "huge" => Ok(Action::Changed("x".repeat(8 << 20))),
        "malformed" => Ok(Action::Changed("this is {not json".into())),
        "fail" => Err(format!("cannot handle an event of {} bytes", event.len())),
        "drop" => Ok(Action::Drop("not for this shop".into())),
        "mistyped" => Ok(Action::Changed(MISTYPED.into())),
        "unhashed-user" => Ok(Action::Changed(UNHASHED_USER.into())),
        "iso-time" => Ok(Action::Split(ISO_TIME.map(String::from).into())),
        "forge-log" => {
            switchyard_plugin_sdk::log::error("one\nFAKE: all events delivered\u{1b}[31m");
            Ok(Action::Unchanged)
        }
        _ => Ok(Action::Unchanged),
    }
}

impl Guest for Hostile {
    fn init(config: String) -> Result<(), String> {
        let mode = config.split('"').nth(3).unwrap_or_default().to_owned();
        if mode == "refuse" {
            return Err("this config is refused on purpose".into());
        }
        MODE.set(mode).map_err(|_| "init twice".to_owned())
    }
    fn transform(event: String) -> Result<Action, String> {
        misbehave(&event)
    }
    fn transform_batch(events: Vec<String>) -> Vec<Result<Action, String>> {
        if mode() == "wrong-count" {
            return Vec::new();
        }
        events.iter().map(|e| misbehave(e)).collect()
    }
}

export!(Hostile);

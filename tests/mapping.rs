//! The default TikTok mapping and every destination setting, through the real config loader and
//! router: each test states the exact payload or status expected.

use serde_json::{Value, json};
use switchyard_core::router::Status;
use switchyard_core::rules::payload::Payload;
use switchyard_tests::*;

fn default() -> switchyard_service::config::Loaded {
    loaded(&tiktok_config(""))
}

fn order(extra: Value) -> Value {
    let mut props = json!({
        "id": 1001, "total_price": "120.00", "total_tax": 20, "total_shipping": 5.5, "currency": "EUR",
        "$is_new_customer": false,
        "items": [{"product_id": "p1", "variant_id": "v1", "sku": "S1", "name": "Tee", "price": 19.99, "quantity": 3},
                  {"product_id": "p2", "sku": "S2", "price": "10", "quantity": 2}]
    });
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    event("Placed Order", props)
}

fn product() -> Value {
    json!({"product_id": "p1", "variant_id": "v1", "sku": "S1", "name": "Tee", "price": "19.99",
           "quantity": 2, "currency": "EUR", "vendor": "Acme"})
}

#[test]
fn every_default_row_maps_to_its_tiktok_event() {
    let l = default();
    let cases = [
        ("$page_load", vec!["PageView"]),
        ("Viewed Product", vec!["ViewContent"]),
        ("Viewed Collection", vec!["ViewContent"]),
        ("Added To Cart", vec!["AddToCart"]),
        ("Started Checkout", vec!["InitiateCheckout"]),
        ("Added Payment Info", vec!["AddPaymentInfo"]),
        ("Placed Order", vec!["Purchase"]),
        ("Started Subscription", vec!["Subscribe"]),
        (
            "Placed Recurring Subscription Order",
            vec!["RecurringSubscriptionPaymentSucceeded"],
        ),
        ("Cancelled Subscription", vec!["CancelSubscription"]),
        ("Activated Subscription", vec!["Subscribe"]),
        ("Searched", vec!["Search"]),
        ("Subscribed To Newsletter", vec!["CompleteRegistration"]),
    ];
    for (source, targets) in cases {
        let data = sent(&l, event(source, json!({"currency": "EUR"})));
        let names: Vec<&str> = data
            .iter()
            .map(|d| d["event"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(names, targets, "{source}");
        for d in &data {
            assert_eq!(
                d["event_id"],
                json!(format!("id-{}", source.to_lowercase().replace(' ', "-")))
            );
            assert_eq!(d["event_time"], json!(1_725_280_000));
        }
    }
}

#[test]
fn server_only_rows_have_no_client_side_and_browser_rows_have_both() {
    let l = default();
    let o = route(&l, order(json!({})), "web");
    assert!(o.client.is_empty());
    let o = route(&l, event("Viewed Product", product()), "web");
    assert_eq!(
        o.client.iter().map(|c| &**c).collect::<Vec<_>>(),
        ["ViewContent"]
    );
    assert_eq!(o.data.len(), 1);
}

#[test]
fn viewed_product_payload_is_exact() {
    let mut ev = event("Viewed Product", product());
    ev["properties"]["$url"] =
        json!("https://shop.example.com/p/tee?utm_source=tt&ttclid=E.C.P.xyz");
    ev["properties"]["referrer"] = json!("https://www.tiktok.com/");
    ev["profile_properties"] =
        json!({"$ip": "203.0.113.7", "$user_agent": "UA/1.0", "_ttp": "ttp-cookie"});
    let data = sent(&default(), ev);
    assert_eq!(
        data[0],
        json!({
            "event": "ViewContent", "event_time": 1_725_280_000, "event_id": "id-viewed-product",
            "user": {"ttclid": "E.C.P.xyz", "ttp": "ttp-cookie", "ip": "203.0.113.7", "user_agent": "UA/1.0"},
            "page": {"url": "https://shop.example.com/p/tee?utm_source=tt&ttclid=E.C.P.xyz",
                     "referrer": "https://www.tiktok.com/"},
            "properties": {
                "contents": [{"content_id": "v1", "content_type": "product", "content_name": "Tee",
                              "quantity": 2, "price": 19.99, "brand": "Acme"}],
                "content_type": "product", "currency": "EUR", "value": 39.98
            }
        })
    );
}

#[test]
fn purchase_payload_is_exact_and_hashes_pii() {
    let mut ev = order(json!({}));
    ev["profile_properties"] = json!({
        "$email": "  Jane.Doe@Example.COM ", "$phone_number": "+1 (415) 555-0100", "$ttp": "ttp-1"
    });
    ev["aliases"] = json!(["urn:email:jane.doe@example.com", "urn:user_id:cust-42"]);
    let data = sent(&default(), ev);
    assert_eq!(data.len(), 1);
    // printf 'jane.doe@example.com' | sha256sum; printf '+14155550100' | sha256sum; printf 'cust-42' | sha256sum
    assert_eq!(
        data[0]["user"],
        json!({
            "email": "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d",
            "phone": "40d3f4e02db27d66cf4cfdda506c2c945f115a7955cc8491dda98ce5beabcda0",
            "external_id": "8a3c5a67cad508582b5edf6b8352cea3ffbad7f44812c1a736b4444c0f5746aa",
            "ttp": "ttp-1"
        })
    );
    assert_eq!(
        data[0]["properties"],
        json!({
            "contents": [
                {"content_id": "v1", "content_type": "product", "content_name": "Tee", "quantity": 3, "price": 19.99},
                {"content_id": "p2", "content_type": "product", "quantity": 2, "price": 10}
            ],
            "content_type": "product", "currency": "EUR", "value": 120.0, "order_id": "1001"
        })
    );
}

#[test]
fn new_customer_purchase_only_for_new_customers() {
    let l = default();
    let names = |ev| -> Vec<String> {
        sent(&l, ev)
            .iter()
            .map(|d| d["event"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        names(order(json!({"$is_new_customer": true}))),
        ["Purchase", "NewCustomerPurchase"]
    );
    assert_eq!(
        names(order(json!({"$is_new_customer": false}))),
        ["Purchase"]
    );
    assert_eq!(
        names(order(json!({"$is_new_customer": "true"}))),
        ["Purchase"],
        "a string is not true"
    );
    let mut no_flag = order(json!({}));
    no_flag["properties"]
        .as_object_mut()
        .map(|p| p.remove("$is_new_customer"));
    assert_eq!(names(no_flag), ["Purchase"]);
    let both = sent(&l, order(json!({"$is_new_customer": true})));
    assert_eq!(both[0]["event_id"], both[1]["event_id"]);
    assert_eq!(both[0]["properties"], both[1]["properties"]);
}

#[test]
fn content_id_modes() {
    for (mode, expected) in [
        ("default", ["v1", "p2"]),
        ("product_id", ["p1", "p2"]),
        ("variant_id", ["v1", ""]),
        ("sku", ["S1", "S2"]),
    ] {
        let l = loaded(&tiktok_config(&format!("content_id: {mode}")));
        let data = sent(&l, order(json!({})));
        let ids: Vec<&str> = data[0]["properties"]["contents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["content_id"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(ids, expected, "{mode}");
    }
}

#[test]
fn conversion_amounts() {
    for (mode, expected) in [
        ("total", 120.0),
        ("total_excl_tax", 100.0),
        ("total_excl_shipping", 114.5),
        ("total_excl_tax_and_shipping", 94.5),
        ("subtotal", 79.97),
    ] {
        let l = loaded(&tiktok_config(&format!("conversion_amount: {mode}")));
        let data = sent(&l, order(json!({})));
        assert_eq!(data[0]["properties"]["value"], json!(expected), "{mode}");
        // A single product is always price × quantity.
        let data = sent(&l, event("Added To Cart", product()));
        assert_eq!(
            data[0]["properties"]["value"],
            json!(39.98),
            "{mode} on a product"
        );
    }
}

#[test]
fn custom_events_map_any_name_and_unmapped_events_are_skipped_with_a_reason() {
    let l = loaded(&tiktok_config(
        "custom_events:\n  - source: Quiz Completed\n    target: SubmitForm\n    fields:\n      properties.description: \"$.properties.result\"\n  - source: Added To Wishlist\n    target: AddToWishlist\n    use: [product]",
    ));
    let data = sent(&l, event("Quiz Completed", json!({"result": "dry skin"})));
    assert_eq!(data[0]["event"], "SubmitForm");
    assert_eq!(data[0]["properties"], json!({"description": "dry skin"}));
    let data = sent(&l, event("Added To Wishlist", product()));
    assert_eq!(data[0]["event"], "AddToWishlist");
    assert_eq!(data[0]["properties"]["contents"][0]["content_id"], "v1");
    let o = route(&l, event("Logged In", json!({})), "web");
    assert_eq!(o.status, Status::Skipped);
    assert_eq!(
        o.reason.as_deref(),
        Some("no mapping row for event `Logged In`")
    );
}

#[test]
fn row_switches_turn_rows_off_and_change_modes() {
    let l = loaded(&tiktok_config(
        "rows:\n  - source: Viewed Collection\n    enabled: false\n  - source: Placed Order\n    target: NewCustomerPurchase\n    enabled: false\n  - source: Viewed Product\n    mode: server",
    ));
    let o = route(&l, event("Viewed Collection", json!({})), "web");
    assert_eq!(o.status, Status::Skipped);
    assert_eq!(
        o.reason.as_deref(),
        Some("Viewed Collection → ViewContent is switched off")
    );
    let data = sent(&l, order(json!({"$is_new_customer": true})));
    assert_eq!(data.len(), 1, "NewCustomerPurchase is off");
    let o = route(&l, event("Viewed Product", product()), "web");
    assert!(o.client.is_empty());
    assert_eq!(o.data.len(), 1);
}

#[test]
fn filters_drop_or_keep_and_name_the_filter() {
    let l = loaded(&tiktok_config(
        "filters:\n  - name: no test orders\n    events: [Placed Order]\n    drop_when: {path: \"$.properties.tags\", op: contains, value: test}\n  - name: big carts only\n    events: [Added To Cart]\n    keep_when: {path: \"$.properties.price\", op: gte, value: 10}",
    ));
    let o = route(&l, order(json!({"tags": ["test", "vip"]})), "web");
    assert_eq!(o.status, Status::Filtered);
    assert_eq!(
        o.reason.as_deref(),
        Some("filter `no test orders` stopped it")
    );
    assert_eq!(
        route(&l, order(json!({"tags": ["vip"]})), "web").status,
        Status::Sent
    );
    let mut cheap = product();
    cheap["price"] = json!(5);
    let o = route(&l, event("Added To Cart", cheap), "web");
    assert_eq!(
        o.reason.as_deref(),
        Some("filter `big carts only` stopped it")
    );
    assert_eq!(
        route(&l, event("Added To Cart", product()), "web").status,
        Status::Sent
    );
    // A filter scoped to other events does not touch this one.
    let mut cheap = product();
    cheap["price"] = json!(5);
    assert_eq!(
        route(&l, event("Viewed Product", cheap), "web").status,
        Status::Sent
    );
}

#[test]
fn deactivated_destinations_and_other_sources_forward_nothing() {
    let l = loaded(&tiktok_config("status: deactivated"));
    let o = route(&l, order(json!({})), "web");
    assert_eq!(o.status, Status::Deactivated);
    assert!(o.data.is_empty());
    let l = loaded(&tiktok_config("").replace("sources: [web, server]", "sources: [server]"));
    let o = route(&l, event("Viewed Product", product()), "web");
    assert_eq!(o.status, Status::Skipped);
    assert_eq!(
        o.reason.as_deref(),
        Some("source `web` is not one of this destination's sources")
    );
    assert_eq!(
        route(&l, event("Viewed Product", product()), "server").status,
        Status::Sent
    );
}

#[test]
fn consent_modes() {
    let with_consent = |choice: Option<&str>| {
        let mut ev = event("Viewed Product", product());
        if let Some(c) = choice {
            ev["profile_properties"]["$consent"] = json!({"marketing": c, "analytics": "granted"});
        }
        ev
    };
    // (mode, visitor's choice, expected status, client side fires)
    let cases = [
        ("always", Some("denied"), Status::Sent, true),
        ("server_only", Some("granted"), Status::Sent, false),
        ("implied", None, Status::Sent, true),
        ("implied", Some("denied"), Status::Skipped, false),
        ("required", None, Status::Skipped, false),
        ("required", Some("denied"), Status::Skipped, false),
        ("required", Some("granted"), Status::Sent, true),
    ];
    for (mode, choice, status, client) in cases {
        let l = loaded(&tiktok_config(&format!(
            "consent: {{category: marketing, mode: {mode}}}"
        )));
        let o = route(&l, with_consent(choice), "web");
        assert_eq!(o.status, status, "{mode} {choice:?}");
        assert_eq!(!o.client.is_empty(), client, "{mode} {choice:?}");
        if status == Status::Skipped {
            assert!(
                o.reason
                    .as_deref()
                    .unwrap_or_default()
                    .starts_with("consent (marketing)")
            );
        }
    }
    // The category is configurable.
    let l = loaded(&tiktok_config(
        "consent: {category: analytics, mode: required}",
    ));
    assert_eq!(
        route(&l, with_consent(Some("denied")), "web").status,
        Status::Sent
    );
    // An order repeats the profile in its properties: a denial there counts, in any case, and a
    // denial in either place wins over a grant in the other.
    let order_with = |profile: Option<&str>, properties: &str| {
        let mut ev = order(json!({}));
        if let Some(c) = profile {
            ev["profile_properties"]["$consent"] = json!({"marketing": c});
        }
        ev["properties"]["$consent"] = json!({"marketing": properties});
        ev
    };
    let implied = loaded(&tiktok_config(
        "consent: {category: marketing, mode: implied}",
    ));
    let required = loaded(&tiktok_config(
        "consent: {category: marketing, mode: required}",
    ));
    for (profile, properties) in [
        (None, "denied"),
        (Some("granted"), "denied"),
        (None, " DENIED "),
    ] {
        let o = route(&implied, order_with(profile, properties), "web");
        assert_eq!(o.status, Status::Skipped, "{profile:?} {properties:?}");
        let o = route(&required, order_with(profile, properties), "web");
        assert_eq!(o.status, Status::Skipped, "{profile:?} {properties:?}");
    }
    let o = route(&required, order_with(None, "Granted"), "web");
    assert_eq!(o.status, Status::Sent);
}

#[test]
fn a_consent_choice_that_is_neither_granted_nor_denied_is_taken_as_a_denial() {
    let implied = loaded(&tiktok_config(
        "consent: {category: marketing, mode: implied}",
    ));
    let required = loaded(&tiktok_config(
        "consent: {category: marketing, mode: required}",
    ));
    let with = |consent: Value| {
        let mut ev = event("Viewed Product", product());
        ev["profile_properties"]["$consent"] = consent;
        ev
    };
    let unreadable = "consent (marketing): the visitor's choice is neither `granted` nor `denied`: taken as a denial";
    for consent in [
        json!({"marketing": "revoked"}),
        json!({"marketing": ["denied"]}),
        json!({"marketing": 0}),
        json!("denied"),
        json!(["granted"]),
    ] {
        for config in [&implied, &required] {
            let o = route(config, with(consent.clone()), "web");
            assert_eq!(o.status, Status::Skipped, "{consent}");
            assert_eq!(o.reason.as_deref(), Some(unreadable), "{consent}");
        }
    }
    // Booleans are read as the choice they say; no choice (null, blank) is no choice.
    let denied = route(&implied, with(json!({"marketing": false})), "web");
    assert_eq!(
        denied.reason.as_deref(),
        Some("consent (marketing): the visitor denied consent")
    );
    assert_eq!(
        route(&required, with(json!({"marketing": true})), "web").status,
        Status::Sent
    );
    for none in [
        json!({"marketing": null}),
        json!({"marketing": " "}),
        json!(null),
        json!({}),
    ] {
        assert_eq!(
            route(&implied, with(none.clone()), "web").status,
            Status::Sent,
            "{none}"
        );
        assert_eq!(
            route(&required, with(none.clone()), "web").status,
            Status::Skipped,
            "{none}"
        );
    }
}

#[test]
fn server_only_consent_leaves_client_only_rows_with_nothing_to_send() {
    let l = loaded(&tiktok_config(
        "consent: {mode: server_only}\nrows:\n  - source: $page_load\n    mode: client",
    ));
    let o = route(&l, event("$page_load", json!({})), "web");
    assert_eq!(o.status, Status::Skipped);
    assert!(o.reason.unwrap_or_default().contains("client-side only"));
}

#[test]
fn timestamps_iso_epoch_and_missing() {
    let l = default();
    let mut ev = event("Searched", json!({"query": "x"}));
    ev["timestamp"] = json!("2024-09-02T14:34:56+02:00");
    assert_eq!(sent(&l, ev.clone())[0]["event_time"], json!(1_725_280_496));
    ev["timestamp"] = json!(1_725_312_229);
    assert_eq!(sent(&l, ev.clone())[0]["event_time"], json!(1_725_312_229));
    ev.as_object_mut().map(|o| o.remove("timestamp"));
    assert_eq!(sent(&l, ev)[0]["event_time"], json!(RECEIVED_AT));
}

#[test]
fn empty_strings_are_never_sent_and_bad_phones_are_warned_not_sent() {
    // White space only is empty too (a probe saw `"ttp": " "` and `"referrer": "   "` sent).
    let mut ev = event(
        "Searched",
        json!({"query": "", "$url": "", "referrer": "   ", "$ip": "\u{a0}"}),
    );
    ev["profile_properties"] = json!({"$email": "   ", "$phone_number": "12", "$ttp": " "});
    let o = route(&default(), ev, "web");
    assert_eq!(o.status, Status::Sent);
    let d = &o.data[0];
    assert!(d.get("user").is_none(), "{d}");
    assert!(d.get("page").is_none(), "{d}");
    assert!(d.get("properties").is_none(), "{d}");
    assert_eq!(o.warnings.len(), 1);
    assert_eq!(&*o.warnings[0].field, "user.phone");
    let text = o.json.to_string();
    assert!(
        !text.contains("\"12\""),
        "warnings never echo the value: {text}"
    );
}

#[test]
fn a_custom_mapping_file_replaces_the_default() {
    let mapping = "rows:\n  - source: Placed Order\n    target: CompletePayment\n    mode: server\n    fields:\n      properties.value: { path: \"$.properties.total_price\", transform: [number] }\n";
    let cfg = write_config(
        &tiktok_config("mapping: my-mapping.yaml"),
        &[("my-mapping.yaml", mapping)],
    );
    let l = switchyard_service::config::load(&cfg.path).unwrap_or_else(|d| panic!("{}", lines(&d)));
    let data = sent(&l, order(json!({})));
    assert_eq!(
        data[0],
        json!({"event": "CompletePayment", "properties": {"value": 120.0}, "event_id": "id-placed-order", "event_time": 1_725_280_000})
    );
}

/// TikTok's own fields lead each payload: `event`, then the `event_id` and `event_time` the row
/// does not set itself, then the row's fields in the order the row builds them, and
/// `limited_data_use` last.
#[test]
fn tiktok_s_own_fields_lead_the_payload_in_a_fixed_order() {
    use switchyard_core::event::SourceEvent;
    use switchyard_service::pipeline::Copies;
    let keys = |row_fields: &str, limited: &str| {
        let mapping = format!(
            "rows:\n  - source: Placed Order\n    target: CompletePayment\n    mode: server\n    fields:\n{row_fields}"
        );
        let extra = format!("mapping: my-mapping.yaml\nlimited_data_use: {limited}");
        let cfg = write_config(&tiktok_config(&extra), &[("my-mapping.yaml", &mapping)]);
        let l =
            switchyard_service::config::load(&cfg.path).unwrap_or_else(|d| panic!("{}", lines(&d)));
        let ev = SourceEvent::from_value(order(json!({})), RECEIVED_AT).unwrap();
        let o = l.pipeline.destinations()[0].route(&ev, "web", Copies::Server.into());
        // Every top-level key, in the order the payload is written.
        let Payload::Object(fields) = &o.data[0] else {
            panic!("an object payload: {:?}", o.data[0]);
        };
        let keys: Vec<&str> = fields.iter().map(|(key, _)| *key).collect();
        keys.join(" ")
    };
    let value =
        "      properties.value: { path: \"$.properties.total_price\", transform: [number] }\n";
    let all = "event event_id event_time properties";
    assert_eq!(keys(value, "never"), all);
    assert_eq!(keys(value, "always"), format!("{all} limited_data_use"));
    // A row that sets `event_time` has it among its own fields (which come in the order the row
    // builds them), once, after TikTok's `event` and `event_id`.
    let timed = format!("      event_time: {{ const: 5 }}\n{value}");
    assert_eq!(keys(&timed, "never"), all);
    // A row's own `limited_data_use` is kept where the row puts it, and not added again.
    let own = format!("      limited_data_use: {{ const: false }}\n{value}");
    let kept = "event event_id event_time limited_data_use properties";
    assert_eq!(keys(&own, "always"), kept);
}

/// A mapping that takes `event_id` from another field still sends the source event's id, on the
/// server copy as on the pixel's: otherwise TikTok could never de-duplicate the two.
#[test]
fn event_id_is_the_source_event_s_whatever_the_mapping_maps() {
    use switchyard_core::event::SourceEvent;
    use switchyard_service::pipeline::Copies;
    let mapping = "rows:\n  - source: Placed Order\n    target: CompletePayment\n    fields:\n      event_id: \"$.properties.id\"\n";
    let extra = "mapping: my-mapping.yaml";
    let cfg = write_config(&tiktok_config(extra), &[("my-mapping.yaml", mapping)]);
    let l = switchyard_service::config::load(&cfg.path).unwrap_or_else(|d| panic!("{}", lines(&d)));
    let mut event = order(json!({}));
    event["properties"]["id"] = json!(1001);
    let ev = SourceEvent::from_value(event, RECEIVED_AT).unwrap();
    let destination = &l.pipeline.destinations()[0];
    let o = destination.route(&ev, "web", Copies::ServerAndBrowser.into());
    let server = o.data[0].to_value();
    assert_eq!(server["event_id"], json!(ev.id()), "{server}");
    let actions = destination.client_actions(&ev, &o).expect("a pixel copy");
    let track = actions
        .calls
        .iter()
        .find(|c| c[0] == "track")
        .expect("track");
    assert_eq!(track[3]["event_id"], json!(ev.id()), "{track}");
}

/// Which fields of a row got a value is counted only when asked (`map` asks, to report fields
/// that never matched; delivery does not), and the payloads are the same either way.
#[test]
fn field_use_is_counted_only_when_asked_and_changes_no_payload() {
    use switchyard_core::event::SourceEvent;
    use switchyard_core::router::Extras;
    use switchyard_service::pipeline::Copies;
    let l = default();
    let ev = SourceEvent::from_value(order(json!({})), RECEIVED_AT).unwrap();
    let dest = &l.pipeline.destinations()[0];
    let counted = dest.route(
        &ev,
        "web",
        Extras {
            field_use: true,
            ..Copies::Server.into()
        },
    );
    let plain = dest.route(&ev, "web", Copies::Server.into());
    assert_eq!(counted.status, Status::Sent);
    assert_eq!(counted.data, plain.data);
    let row = &counted.rows_built[0];
    let labels = row.row.field_labels();
    let present = row.present.as_ref().expect("counted when asked");
    let set = (0..labels.len()).filter(|&i| present.has(i)).count();
    assert!(
        set > 0 && set < labels.len(),
        "{set} of {} fields",
        labels.len()
    );
    assert_eq!(plain.rows_built.len(), counted.rows_built.len());
    assert!(
        plain.rows_built[0].present.is_none(),
        "not counted unless asked"
    );
}

/// An event that one row maps keeps its payload, browser event name and row in the outcome
/// itself: routing allocates nothing per event for them (`PerRow`).
#[test]
fn one_row_s_items_stay_inline_in_the_outcome() {
    use switchyard_core::event::SourceEvent;
    use switchyard_service::pipeline::Copies;
    let l = default();
    let dest = &l.pipeline.destinations()[0];
    let viewed = SourceEvent::from_value(event("Viewed Product", product()), RECEIVED_AT).unwrap();
    let o = dest.route(&viewed, "web", Copies::Server.into());
    assert_eq!(
        (o.data.len(), o.client.len(), o.rows_built.len()),
        (1, 1, 1)
    );
    assert!(!o.data.spilled() && !o.client.spilled() && !o.rows_built.spilled());
}

/// The warnings of an outcome, as `(field, message)`.
fn warnings_of(o: &Routed) -> Vec<(String, &'static str)> {
    o.warnings
        .iter()
        .map(|w| (w.field.to_string(), w.message))
        .collect()
}

#[test]
fn fields_of_the_wrong_type_are_converted_or_left_out_with_a_warning() {
    // A probe sent `page.url: ["x"]` and `user.ip: 12345` as they were: TikTok refuses the whole
    // request (40002), and the event reached the dead letters late.
    let mut ev = event(
        "Searched",
        json!({"query": ["tee", "cap"], "$url": ["https://shop.example/"], "referrer": 42,
               "$user_agent": {"ua": "Mozilla/5.0"}}),
    );
    ev["profile_properties"] = json!({"$ip": 12345, "$ttp": true, "$email": 123});
    let o = route(&default(), ev, "web");
    assert_eq!(o.status, Status::Sent);
    assert_eq!(
        o.data[0]["user"],
        json!({
            // printf '123' | sha256sum: a number is hashed as its text (unchanged behaviour)
            "email": "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3",
            "ip": "12345"
        })
    );
    assert_eq!(o.data[0]["page"], json!({"referrer": "42"}));
    assert!(o.data[0].get("properties").is_none(), "{}", o.data[0]);
    assert_eq!(
        warnings_of(&o),
        [
            // The mapping's own: the click id is read from `$url` (`query_param`).
            ("user.ttclid".to_owned(), "not a URL"),
            (
                "user.ttp".to_owned(),
                "true or false where the platform takes text: left out"
            ),
            (
                "user.user_agent".to_owned(),
                "an object where the platform takes text: left out"
            ),
            (
                "page.url".to_owned(),
                "an array where the platform takes text: left out"
            ),
            (
                "properties.query".to_owned(),
                "an array where the platform takes text: left out"
            ),
        ]
    );
    // The browser copy is the same object: nothing refused reaches the pixel either.
    assert_eq!(o.json["client"], json!(["Search"]));
}

#[test]
fn contents_entries_of_the_wrong_type_or_without_an_id_are_warned_about() {
    // A field of the wrong type is named as every entry's field is (`[]`), as the mapping's own
    // warnings name it; an entry without an id by its position.
    let items = json!([
        {"product_id": "p1", "name": ["Tee"], "price": "19.90", "quantity": 1, "vendor": false},
        {"name": "Cap", "price": 5, "quantity": 2}
    ]);
    let o = route(
        &default(),
        event(
            "Viewed Collection",
            json!({"items": items, "currency": "EUR"}),
        ),
        "web",
    );
    assert_eq!(o.status, Status::Sent);
    assert_eq!(
        o.data[0]["properties"]["contents"],
        json!([
            {"content_id": "p1", "content_type": "product", "quantity": 1, "price": 19.9},
            {"content_name": "Cap", "quantity": 2, "price": 5}
        ]),
        "an entry without content_id is still sent"
    );
    assert_eq!(
        warnings_of(&o),
        [
            (
                "properties.contents[].brand".to_owned(),
                "true or false where the platform takes text: left out"
            ),
            (
                "properties.contents[].content_name".to_owned(),
                "an array where the platform takes text: left out"
            ),
            (
                "properties.contents[1].content_id".to_owned(),
                "missing: sent without it, the entry matches no catalog item"
            ),
        ]
    );
}

#[test]
fn a_placed_order_without_is_new_customer_is_sent_with_a_warning() {
    let mut no_flag = order(json!({}));
    no_flag["properties"]
        .as_object_mut()
        .map(|p| p.remove("$is_new_customer"));
    let o = route(&default(), no_flag, "web");
    let names: Vec<&Value> = o.data.iter().map(|d| &d["event"]).collect();
    assert_eq!(names, [&json!("Purchase")]);
    assert_eq!(o.warnings.len(), 1, "{:?}", o.warnings);
    assert_eq!(&*o.warnings[0].field, "properties.$is_new_customer");
    assert!(o.warnings[0].message.starts_with("missing"));
    // `false` is a flag: no warning; text is not true, and is named.
    let o = route(&default(), order(json!({"$is_new_customer": false})), "web");
    assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    let o = route(
        &default(),
        order(json!({"$is_new_customer": "true"})),
        "web",
    );
    assert_eq!(o.data.len(), 1, "the text \"true\" is not true");
    assert_eq!(
        warnings_of(&o),
        [(
            "properties.$is_new_customer".to_owned(),
            "text, not true or false: only true sends NewCustomerPurchase"
        )]
    );
}

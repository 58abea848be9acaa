//! Match quality and hygiene of the TikTok payload: every matching key of the `user` object, how it
//! is normalised and hashed, where it may come from, and the number, currency and flag rules. Each
//! test states the exact payload; hashes are computed here from the normalised input.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchyard_tests::*;

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// An event of `name` with these properties and profile properties.
fn with_profile(name: &str, properties: Value, profile: Value) -> Value {
    let mut e = event(name, properties);
    e["profile_properties"] = profile;
    e
}

/// The `user` object of the one payload `event` makes on `config`.
fn user(config: &str, event: Value) -> Value {
    let l = loaded(&tiktok_config(config));
    let data = sent(&l, event);
    assert_eq!(data.len(), 1, "{data:?}");
    data[0]["user"].clone()
}

#[test]
fn phone_numbers_are_parsed_in_the_events_country_and_hashed_as_e164() {
    let page = |profile: Value| with_profile("$page_load", json!({}), profile);
    // The examples that used to become wrong numbers.
    let us = user(
        "",
        page(json!({"$phone_number": "(415) 555-0100", "$country_code": "US"})),
    );
    assert_eq!(us["phone"], sha("+14155550100"));
    let fr = user(
        "",
        page(json!({"$phone_number": "06 12 34 56 78", "$country_code": "FR"})),
    );
    assert_eq!(fr["phone"], sha("+33612345678"));
    let nl = user("", page(json!({"$phone_number": "+31 (0)6 12345678"})));
    assert_eq!(nl["phone"], sha("+31612345678"));
    // The country of an order (in its properties), and the destination's default.
    let order = with_profile(
        "$page_load",
        json!({"$country_code": "FR"}),
        json!({"$phone_number": "06 12 34 56 78"}),
    );
    assert_eq!(user("", order)["phone"], sha("+33612345678"));
    let national = page(json!({"$phone_number": "(415) 555-0100"}));
    assert_eq!(
        user("default_country: US", national.clone())["phone"],
        sha("+14155550100")
    );
    // No country at all, or not a valid number: nothing is sent, with a warning.
    let l = loaded(&tiktok_config(""));
    let r = route(&l, national, "web");
    assert!(r.data[0]["user"].get("phone").is_none(), "{:?}", r.data);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert_eq!(&*r.warnings[0].field, "user.phone");
    let invalid = user(
        "",
        page(json!({"$phone_number": "+1 555 01", "$country_code": "US"})),
    );
    assert!(invalid.get("phone").is_none(), "{invalid}");
}

#[test]
fn a_default_country_that_is_no_country_is_refused_at_load() {
    let errors = load_errors(&tiktok_config("default_country: XX"), &[]);
    let text = lines(&errors);
    assert!(text.contains("default_country"), "{text}");
    assert!(text.contains("`XX` is not a country code"), "{text}");
}

#[test]
fn advanced_matching_fields_are_normalised_and_hashed_or_sent_as_they_are() {
    let profile = json!({
        "$email": " Ann@Example.COM ", "$first_name": " Ann ", "$last_name": "DE VRIES",
        "$zip_code": " 94107 ", "$city": " San Francisco ", "$state": "CA", "$country_code": "us",
        "$external_id": 12345, "$ip": "203.0.113.7", "$user_agent": "Mozilla/5.0",
    });
    let u = user("", with_profile("$page_load", json!({}), profile));
    assert_eq!(
        u,
        json!({
            "email": sha("ann@example.com"),
            "first_name": sha("ann"),
            "last_name": sha("de vries"),
            "zip_code": sha("94107"),
            "external_id": sha("12345"),
            "city": "san francisco",
            "state": "ca",
            "country": "US",
            "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0",
        })
    );
}

#[test]
fn a_country_that_is_no_iso_code_is_left_out_with_a_warning() {
    let page = |country: &str| {
        with_profile(
            "$page_load",
            json!({}),
            json!({"$country_code": country, "$email": "a@example.com"}),
        )
    };
    assert_eq!(user("", page(" fr "))["country"], "FR");
    let l = loaded(&tiktok_config(""));
    for wrong in ["France", "FRA", "XX"] {
        let r = route(&l, page(wrong), "web");
        assert_eq!(r.data.len(), 1, "{wrong}");
        let user = &r.data[0]["user"];
        assert!(user.get("country").is_none(), "{wrong}: {user}");
        assert_eq!(user["email"], sha("a@example.com"), "{wrong}");
        assert_eq!(r.warnings.len(), 1, "{wrong}: {:?}", r.warnings);
        assert_eq!(&*r.warnings[0].field, "user.country");
    }
}

#[test]
fn values_that_already_are_sha256_digests_are_never_hashed_twice() {
    let digest = sha("someone");
    let profile = json!({
        "$email": digest, "$phone_number": digest, "$external_id": digest,
        "$first_name": digest, "$last_name": digest, "$zip_code": digest,
    });
    let u = user("", with_profile("$page_load", json!({}), profile));
    for field in [
        "email",
        "phone",
        "external_id",
        "first_name",
        "last_name",
        "zip_code",
    ] {
        assert_eq!(u[field], digest, "{field}: {u}");
    }
}

#[test]
fn matching_keys_come_from_the_profile_or_the_events_own_properties() {
    // A server copy of a browser event: everything in event properties, the profile empty.
    let properties = json!({
        "$user_agent": "Mozilla/5.0 (X11)", "$ip": "198.51.100.4", "$ttclid": "E.C.click",
        "_ttp": "ttp-cookie", "$email": "Bo@Example.com", "$first_name": "Bo",
    });
    let u = user("", with_profile("$page_load", properties, json!({})));
    assert_eq!(u["user_agent"], "Mozilla/5.0 (X11)");
    assert_eq!(u["ip"], "198.51.100.4");
    assert_eq!(u["ttclid"], "E.C.click");
    assert_eq!(u["ttp"], "ttp-cookie");
    assert_eq!(u["email"], sha("bo@example.com"));
    assert_eq!(u["first_name"], sha("bo"));
    // The click id of the landing URL wins; the kept cookie value comes next.
    let landing = json!({"$url": "https://shop.example.com/?ttclid=E.C.url"});
    let kept = json!({"$ttclid": "E.C.cookie", "$ttp": "ttp-profile"});
    let u = user("", with_profile("$page_load", landing, kept.clone()));
    assert_eq!(u["ttclid"], "E.C.url");
    assert_eq!(u["ttp"], "ttp-profile");
    let u = user("", with_profile("$page_load", json!({}), kept));
    assert_eq!(u["ttclid"], "E.C.cookie");
}

#[test]
fn numbers_and_codes_are_sent_in_tiktoks_types() {
    let l = loaded(&tiktok_config(""));
    let cart = event(
        "Added To Cart",
        json!({"product_id": 8001, "price": "19.90", "quantity": "2", "currency": "eur"}),
    );
    let data = sent(&l, cart);
    let props = &data[0]["properties"];
    assert_eq!(props["currency"], "EUR");
    assert_eq!(props["value"], json!(39.8));
    assert_eq!(
        props["contents"],
        json!([{"content_id": "8001", "content_type": "product", "price": 19.9, "quantity": 2}])
    );
    // A free order still has a value, and ids are strings.
    let free = event(
        "Placed Order",
        json!({"id": 1001, "total_price": 0, "currency": "USD",
               "items": [{"product_id": 5, "price": 0, "quantity": 1}]}),
    );
    let data = sent(&l, free);
    assert_eq!(data[0]["properties"]["value"], json!(0.0));
    assert_eq!(data[0]["properties"]["order_id"], "1001");
    assert_eq!(data[0]["properties"]["contents"][0]["content_id"], "5");
    // An invalid currency is left out, with a warning.
    let bad = event(
        "Added To Cart",
        json!({"product_id": "1", "price": 5, "currency": "EURO"}),
    );
    let r = route(&l, bad, "web");
    assert!(
        r.data[0]["properties"].get("currency").is_none(),
        "{:?}",
        r.data
    );
    let warning = r
        .warnings
        .iter()
        .find(|w| &*w.field == "properties.currency")
        .expect("a currency warning");
    assert_eq!(warning.message, "not an ISO 4217 currency code");
}

#[test]
fn limited_data_use_follows_the_setting_and_the_events_own_flag() {
    let flag = |config: &str, properties: Value, profile: Value| {
        let l = loaded(&tiktok_config(config));
        let data = sent(&l, with_profile("$page_load", properties, profile));
        data[0].get("limited_data_use").cloned()
    };
    assert_eq!(flag("", json!({}), json!({})), None, "never, by default");
    assert_eq!(
        flag("limited_data_use: always", json!({}), json!({})),
        Some(json!(true))
    );
    let opted_out = json!({"$consent": {"data_sale": "denied"}});
    assert_eq!(
        flag("limited_data_use: from_consent", json!({}), opted_out),
        Some(json!(true))
    );
    assert_eq!(
        flag("limited_data_use: from_consent", json!({}), json!({})),
        None
    );
    // A choice that is neither granted nor denied limits too; a grant does not.
    let unclear = json!({"$consent": {"data_sale": "opted-out"}});
    assert_eq!(
        flag("limited_data_use: from_consent", json!({}), unclear),
        Some(json!(true))
    );
    let granted = json!({"$consent": {"data_sale": true}});
    assert_eq!(
        flag("limited_data_use: from_consent", json!({}), granted),
        None
    );
    // The event's own flag wins, both ways.
    assert_eq!(
        flag("", json!({"$limited_data_use": true}), json!({})),
        Some(json!(true))
    );
    assert_eq!(
        flag(
            "limited_data_use: always",
            json!({}),
            json!({"$limited_data_use": false})
        ),
        None
    );
}

#[test]
fn a_limited_data_use_flag_given_as_text_is_taken_with_a_warning_and_anything_else_is_not() {
    let l = loaded(&tiktok_config(""));
    let routed = |flag: Value| {
        let properties = json!({"$limited_data_use": flag});
        route(&l, with_profile("$page_load", properties, json!({})), "web")
    };
    for (flag, sent) in [
        (json!("true"), Some(json!(true))),
        (json!(" TRUE "), Some(json!(true))),
        (json!("false"), None),
        (json!("yes"), None),
        (json!(1), None),
    ] {
        let r = routed(flag.clone());
        assert_eq!(r.data[0].get("limited_data_use"), sent.as_ref(), "{flag}");
        let warned = r.warnings.iter().any(|w| &*w.field == "$limited_data_use");
        assert!(warned, "{flag}: {:?}", r.warnings);
    }
    let r = routed(json!(true));
    assert_eq!(r.data[0].get("limited_data_use"), Some(&json!(true)));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn a_mapped_event_time_or_limited_data_use_of_the_wrong_kind_is_settled_with_a_warning() {
    let l = loaded(&tiktok_config(
        "custom_events:\n  - {source: Quiz Completed, target: Lead, fields: {event_time: \"$.properties.t\", limited_data_use: \"$.properties.ldu\"}}",
    ));
    let routed = |t: Value, ldu: Value| {
        let mut event = with_profile("Quiz Completed", json!({"t": t, "ldu": ldu}), json!({}));
        event["timestamp"] = json!(1725280000);
        route(&l, event, "web")
    };
    let fields = |r: &Routed| {
        let d = &r.data[0];
        (d["event_time"].clone(), d["limited_data_use"].clone())
    };
    let good = routed(json!("2024-09-02T12:00:00Z"), json!("true"));
    assert_eq!(fields(&good), (json!(1725278400), json!(true)));
    assert!(good.warnings.is_empty(), "{:?}", good.warnings);
    let bad = routed(json!(1725278400000_i64), json!("yes"));
    assert_eq!(fields(&bad), (json!(1725280000), json!(false)));
    let warned: Vec<&str> = bad.warnings.iter().map(|w| &*w.field).collect();
    assert_eq!(
        warned,
        ["event_time", "limited_data_use"],
        "{:?}",
        bad.warnings
    );
}

#[test]
fn a_mapping_that_would_send_personal_data_outside_user_rename_the_event_or_misshape_a_typed_field_is_refused()
 {
    let refused = |fields: &str| {
        let config = tiktok_config(&format!(
            "custom_events:\n  - {{source: Quiz Completed, target: Lead, fields: {{{fields}}}}}"
        ));
        lines(&load_errors(&config, &[]))
    };
    for (fields, said) in [
        (
            r#"properties.note: "$.properties['$email']""#,
            "`properties.note` reads `$.properties['$email']`, personal data",
        ),
        (
            r#"page.referrer: {path: "$.profile_properties['$phone_number']", transform: [trim]}"#,
            "`page.referrer` reads `$.profile_properties['$phone_number']`, personal data",
        ),
        (
            r#"properties: "$.properties""#,
            "`properties` reads `$.properties` as a whole",
        ),
        (
            r#"properties.ids: {path: "$.aliases", transform: [{aliases: email}]}"#,
            "`properties.ids` reads `$.aliases` as a whole",
        ),
        (
            r#"event: "$.properties.name""#,
            "`event` is the row's `target`",
        ),
        (
            r#"event.name: "$.properties.name""#,
            "`event` is the row's `target`",
        ),
        (
            r#"properties.zip: {path: "$.properties['$zip_code']", transform: [number]}"#,
            "`properties.zip` reads `$.properties['$zip_code']`, personal data",
        ),
        (
            r#"properties.contents.0.price: "$.properties.p""#,
            "`properties.contents.0.price` builds an object at `properties.contents`, where the platform takes a list: map `properties.contents` itself (a list is built with `each`)",
        ),
        (
            r#"page.url.host: "$.properties.host""#,
            "builds an object at `page.url`, where the platform takes text",
        ),
        (
            r#""properties.contents[0].price": "$.properties.p""#,
            "`properties.contents[0].price` is not a field name: a target names its keys between dots, without brackets (`properties.value`)",
        ),
        (
            r#""properties['value']": "$.properties.p""#,
            "`properties['value']` is not a field name",
        ),
        (
            r#"user.email: {path: "$.properties.e", transform: [trim, lower, sha256], default: "x@y.com"}"#,
            "fields['user.email'].default: this default of `user.email` would be sent as it is, while TikTok takes `user.email` only as a SHA-256 digest",
        ),
        (
            r#"user.phone: {first_of: ["$.a", {path: "$.b", default: 5}], transform: [e164, sha256], default: 6}"#,
            "fields['user.phone'].default: this default of `user.phone` would be sent as it is",
        ),
        (
            r#"user.external_id: {first_of: ["$.a", {path: "$.b", transform: [sha256], default: ""}]}"#,
            "fields['user.external_id'].first_of[1].default: this default of `user.external_id` would be sent",
        ),
    ] {
        let text = refused(fields);
        assert!(text.contains(said), "{fields}: {text}");
        assert!(text.contains("custom_events[0].fields"), "{fields}: {text}");
        assert_eq!(text.matches("error:").count(), 1, "{fields}: {text}");
    }
    // Hashed, or made into something else, it may go anywhere.
    let config = tiktok_config(
        "custom_events:\n  - {source: Quiz Completed, target: Lead, fields: {properties.note: {path: \"$.properties['$email']\", transform: [trim, lower, sha256]}, properties.cart: {path: \"$.aliases\", transform: [{alias: cart_token}]}}}",
    );
    loaded(&config);
}

#[test]
fn a_mapped_event_id_other_than_the_events_own_loads_with_a_warning_that_it_is_never_sent() {
    let config = tiktok_config(
        "custom_events:\n  - {source: Quiz Completed, target: Lead, fields: {event_id: \"$.profile_properties['$external_id']\"}}\n  - {source: Quiz Started, target: Contact, fields: {event_id: {path: \"$.properties.quiz_id\", transform: [trim]}}}\n  - {source: Quiz Ended, target: Contact, custom: true, fields: {event_id: \"$.event_id\"}}\n  - {source: Quiz Left, target: Contact, custom: true, fields: {event_id: \"$['event_id']\"}}",
    );
    let cfg = write_config(&config, &[]);
    let l = switchyard_service::config::load(&cfg.path).unwrap_or_else(|d| panic!("{}", lines(&d)));
    let replaced: Vec<_> = l
        .warnings
        .iter()
        .filter(|w| w.message.contains("this field is never sent"))
        .map(|w| w.path.as_str())
        .collect();
    assert_eq!(
        replaced,
        [
            "$.destinations[0].custom_events[0].fields.event_id",
            "$.destinations[0].custom_events[1].fields.event_id"
        ],
        "{}",
        lines(&l.warnings)
    );
    // Whatever it reads, the event's own `event_id` is sent.
    let quiz = with_profile(
        "Quiz Completed",
        json!({}),
        json!({"$external_id": "cust-9"}),
    );
    let data = sent(&l, quiz);
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(data[0]["event_id"], "id-quiz-completed", "{data:?}");
    assert!(!data[0].to_string().contains("cust-9"), "{data:?}");
    // In a mapping file: at the template and the row that build it.
    let mapping = "templates:\n  base:\n    event_id: \"$.properties.order_ref\"\nrows:\n  - source: Placed Order\n    target: Purchase\n    use: [base]\n  - source: Added To Cart\n    target: AddToCart\n    fields:\n      event_id: \"$.properties.cart_ref\"\n";
    let cfg = write_config(
        &tiktok_config("mapping: my-mapping.yaml"),
        &[("my-mapping.yaml", mapping)],
    );
    let l = switchyard_service::config::load(&cfg.path).unwrap_or_else(|d| panic!("{}", lines(&d)));
    let placed: Vec<_> = l
        .warnings
        .iter()
        .filter(|w| w.message.contains("this field is never sent"))
        .map(|w| (w.path.as_str(), w.line))
        .collect();
    assert_eq!(
        placed,
        [
            ("$.templates.base.event_id", 3),
            ("$.rows[1].fields.event_id", 11)
        ],
        "{}",
        lines(&l.warnings)
    );
}

#[test]
fn validate_warns_about_event_names_tiktok_does_not_know() {
    let config = tiktok_config(
        "custom_events:\n  - {source: Quiz Completed, target: SubmitForm}\n  - {source: Wished, target: AddToWishList}\n  - {source: Loyalty, target: LoyaltyPoints, custom: true}\n  - {source: Placed Order, target: Purchase}",
    );
    let cfg = write_config(&config, &[]);
    let l = switchyard_service::config::load(&cfg.path).unwrap_or_else(|d| panic!("{}", lines(&d)));
    let text = lines(&l.warnings);
    assert!(
        text.contains("custom_events[0].target: TikTok replaced the event `SubmitForm` with `Lead`: use `Lead`"),
        "{text}"
    );
    assert!(
        text.contains(
            "`AddToWishList` is not a TikTok standard event (did you mean `AddToWishlist`?)"
        ),
        "{text}"
    );
    assert!(!text.contains("LoyaltyPoints"), "declared custom: {text}");
    // A custom event that repeats a default row, with the file and line of both.
    let repeat = l
        .warnings
        .iter()
        .find(|w| w.message.contains("repeats the mapping's row"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(repeat.path, "$.destinations[0].custom_events[3]");
    assert!(
        repeat
            .message
            .contains("`Placed Order` → `Purchase` (<built-in>/mappings/tiktok.yaml:"),
        "{}",
        repeat.message
    );
    // The default mapping itself draws no warning.
    let clean = switchyard_service::config::load(&write_config(&tiktok_config(""), &[]).path)
        .unwrap_or_else(|d| panic!("{}", lines(&d)));
    let names: Vec<_> = clean
        .warnings
        .iter()
        .filter(|w| w.message.contains("TikTok"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn validate_warns_about_plain_http_that_leaves_the_machine() {
    let warnings = |extra: &str| {
        let cfg = write_config(&tiktok_config(extra), &[]);
        let l =
            switchyard_service::config::load(&cfg.path).unwrap_or_else(|d| panic!("{}", lines(&d)));
        l.warnings
            .into_iter()
            .filter(|w| w.message.contains("plain `http`"))
            .map(|w| w.path)
            .collect::<Vec<_>>()
    };
    let remote = "endpoint: http://business-api.tiktok.com/open_api/v1.3/event/track/\npixel_loader_url: http://analytics.tiktok.com/i18n/pixel/events.js";
    assert_eq!(
        warnings(remote),
        [
            "$.destinations[0].endpoint",
            "$.destinations[0].pixel_loader_url"
        ]
    );
    // A local mock, and TikTok's own https URLs, draw no warning.
    assert!(warnings("endpoint: http://127.0.0.1:9/track").is_empty());
    assert!(warnings("").is_empty());
}

#[test]
fn several_identities_are_sent_as_a_list_without_repeats() {
    let order = with_profile(
        "$page_load",
        json!({"$email": "Order@Example.com", "$phone_number": "+1 415 555 0100"}),
        json!({"$email": " profile@example.com", "$phone_number": "+14155550100"}),
    );
    let u = user("", order);
    assert_eq!(
        u["email"],
        json!([sha("profile@example.com"), sha("order@example.com")])
    );
    // The same number written twice is one identity.
    assert_eq!(u["phone"], sha("+14155550100"));
}

#[test]
fn aliases_are_the_last_fallback_for_email_phone_and_external_id() {
    let mut e = with_profile("$page_load", json!({}), json!({}));
    e["aliases"] = json!([
        "urn:email:Ann@Example.com",
        "urn:email:ann@work.example",
        "urn:phone:+33612345678",
        "urn:user_id:42",
        "urn:cart_token:c1"
    ]);
    let u = user("", e.clone());
    assert_eq!(
        u["email"],
        json!([sha("ann@example.com"), sha("ann@work.example")])
    );
    assert_eq!(u["phone"], sha("+33612345678"));
    assert_eq!(u["external_id"], sha("42"));
    // A profile value wins over the aliases.
    e["profile_properties"] = json!({"$email": "other@example.com"});
    assert_eq!(user("", e)["email"], sha("other@example.com"));
}

#[test]
fn the_locale_is_sent_as_tiktok_writes_it() {
    let e = with_profile("$page_load", json!({}), json!({"$locale": "en-US"}));
    assert_eq!(user("", e)["locale"], "en_US");
}

#[test]
fn a_product_id_is_a_product_group_when_the_destination_says_so() {
    let view = |config: &str, product: Value| {
        let l = loaded(&tiktok_config(config));
        sent(&l, event("Viewed Product", product))[0]["properties"].clone()
    };
    let variant = json!({"product_id": "p1", "variant_id": "v1", "price": 5, "currency": "EUR"});
    let group = json!({"product_id": "p1", "price": 5, "currency": "EUR"});
    let groups = "product_id_content_type: product_group";
    for config in ["", groups] {
        let p = view(config, variant.clone());
        assert_eq!(p["content_type"], "product", "{config}");
        assert_eq!(p["contents"][0]["content_type"], "product", "{config}");
    }
    assert_eq!(
        view("", group.clone())["contents"][0]["content_type"],
        "product"
    );
    let p = view(groups, group.clone());
    assert_eq!(p["content_type"], "product_group");
    assert_eq!(p["contents"][0]["content_id"], "p1");
    assert_eq!(p["contents"][0]["content_type"], "product_group");
    let by_product = format!("{groups}\ncontent_id: product_id");
    let p = view(&by_product, json!({"product_id": "p1", "variant_id": "v1"}));
    assert_eq!(p["contents"][0]["content_type"], "product_group");
}

//! The browser side through `switchyard serve`: `POST /v1/collect` answers with the pixel calls
//! computed by the same rules as the server side, with the same `event_id` as the server copy the
//! mock Events API receives; consent and deactivation gate both sides. (The browser script and the
//! Chromium end-to-end test are not built yet.)

use serde_json::{Value, json};
use std::time::Duration;
use switchyard_tests::mock_tiktok::MockTiktok;
use switchyard_tests::service::*;

const KEY: &str = "pk-shop-123";

fn config(endpoint: &str, data: &std::path::Path) -> String {
    format!(
        "sources:\n  - {{name: web, kind: browser, public_key: {KEY}}}\n\
         destinations:\n  - name: tiktok\n    type: tiktok\n    pixel_id: CJQBODJC77UB4MRTGFRF\n\
         \x20   access_token: \"${{SY_TIKTOK_TOKEN}}\"\n    domain: https://shop.example.com\n\
         \x20   sources: [web]\n    endpoint: {endpoint}\n    consent: {{category: marketing, mode: implied}}\n\
         \x20 - name: old-pixel\n    type: tiktok\n    status: deactivated\n    pixel_id: AAAAAAAAAAAAAAAAAAAA\n\
         \x20   access_token: \"${{SY_TIKTOK_TOKEN}}\"\n    domain: https://shop.example.com\n\
         \x20   sources: [web]\n    endpoint: {endpoint}\n\
         server: {{listen: \"127.0.0.1:0\", data_dir: \"{}\", linger_ms: 10}}\n",
        data.display()
    )
}

fn collect(service: &Service, event: &Value) -> Answer {
    http(
        "POST",
        &service.url(&format!("/v1/collect?key={KEY}")),
        &[("content-type", "text/plain")],
        Some(serde_json::to_vec(event).unwrap()),
    )
    .unwrap()
}

#[test]
fn collect_answers_with_pixel_calls_sharing_the_server_event_id() {
    let mock = MockTiktok::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.yaml");
    std::fs::write(&path, config(&mock.endpoint, &dir.path().join("data"))).unwrap();
    let service = Service::start(&path, None);

    // The browser spells fields in camelCase.
    let cart = json!({"eventName": "Added To Cart", "eventID": "b-cart-1",
        "properties": {"product_id": "8001", "price": 24.95, "quantity": 2, "currency": "EUR",
                       "$url": "https://shop.example.com/p/8001"},
        "profileProperties": {"$email": " Ann@Example.com "},
        "aliases": ["urn:email:ann@example.com"]});
    let a = collect(&service, &cart);
    assert_eq!(a.status, 202, "{}", a.body);
    let destinations = a.body["destinations"].as_array().unwrap();
    assert_eq!(
        destinations.len(),
        1,
        "the deactivated destination fires nothing"
    );
    let tiktok = &destinations[0];
    assert_eq!(tiktok["destination"], "tiktok");
    assert_eq!(tiktok["pixel_id"], "CJQBODJC77UB4MRTGFRF");
    let calls = tiktok["calls"].as_array().unwrap();
    assert_eq!(calls[0][0], "identify");
    assert_eq!(calls[0][1]["email"].as_str().unwrap().len(), 64, "hashed");
    assert_eq!(calls[1][0], "track");
    assert_eq!(calls[1][1], "AddToCart");
    assert_eq!(calls[1][2]["currency"], "EUR");
    assert_eq!(calls[1][2]["contents"][0]["content_id"], "8001");
    assert_eq!(calls[1][3], json!({"event_id": "b-cart-1"}));

    // The server copy: same event_id, same hashed email.
    assert_eq!(mock.wait_for_distinct(1, Duration::from_secs(20)), 1);
    let server = &mock.events()[0];
    assert_eq!(server["event"], "AddToCart");
    assert_eq!(server["event_id"], "b-cart-1");
    assert_eq!(server["user"]["email"], calls[0][1]["email"]);

    // A repeat (an offline retry) is neither queued nor fired again.
    let again = collect(&service, &cart);
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["destinations"], json!([]));

    // Consent denied: no pixel call, no server copy.
    let mut denied = cart.clone();
    denied["eventID"] = "b-cart-2".into();
    denied["profileProperties"]["$consent"] = json!({"marketing": "denied"});
    let a = collect(&service, &denied);
    assert_eq!(a.status, 202);
    assert_eq!(a.body["destinations"], json!([]));

    // A page view fires `ttq.page()`.
    let page = json!({"eventName": "$page_load", "eventID": "b-page-1",
        "properties": {"$url": "https://shop.example.com/", "$sales_channel_type": "web"},
        "profileProperties": {}, "aliases": ["urn:cart_token:c1"]});
    let a = collect(&service, &page);
    assert_eq!(a.body["destinations"][0]["calls"], json!([["page"]]));

    std::thread::sleep(Duration::from_millis(500));
    let ids = mock.event_ids();
    assert!(!ids.contains(&"b-cart-2".to_owned()), "{ids:?}");
    assert_eq!(ids.iter().filter(|i| *i == "b-cart-1").count(), 1);

    // Refusals: no key, an invalid event; the preflight is open.
    let no_key = http(
        "POST",
        &service.url("/v1/collect"),
        &[("content-type", "application/json")],
        Some(b"{}".to_vec()),
    )
    .unwrap();
    assert_eq!(no_key.status, 401);
    let invalid = collect(&service, &json!({"eventName": "x"}));
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.body["error"], "`event_id` is missing");
}

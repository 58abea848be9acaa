//! The browser side through `switchyard serve`: `POST /v1/collect` answers with the pixel calls
//! computed by the same rules as the server side, with the same `event_id` as the server copy the
//! mock Events API receives; consent, deactivation and the transform plugins act on both sides
//! alike. A demo shop runs in headless Chromium (`--dump-dom`); the script's offline queue, two
//! pixels and pages that go away are driven over WebDriver in `browser_pixels.rs`.

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
    assert_eq!(
        server["user"]["ip"], "127.0.0.1",
        "the visitor's address is added"
    );

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

    // A page view is tracked as `PageView` with the event's id (not `ttq.page()`, which takes no
    // id and reports `Pageview`): the same name and id as its server copy.
    let page = json!({"eventName": "$page_load", "eventID": "b-page-1",
        "properties": {"$url": "https://shop.example.com/", "$sales_channel_type": "web"},
        "profileProperties": {}, "aliases": ["urn:cart_token:c1"]});
    let a = collect(&service, &page);
    assert_eq!(
        a.body["destinations"][0]["calls"],
        json!([["track", "PageView", {}, {"event_id": "b-page-1"}]])
    );

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

/// A config whose events go through a currency plugin (the config's `transforms`) and whose
/// TikTok payloads go through a content-id plugin (`payload_transforms`).
fn config_with_plugins(endpoint: &str, data: &std::path::Path) -> String {
    let fx = switchyard_tests::plugin_wasm("currency-converter");
    let prefix = switchyard_tests::plugin_wasm("content-id-prefix");
    config(endpoint, data)
        .replace(
            "destinations:\n",
            &format!(
                "transforms:\n  - name: fx\n    path: {}\n    config: {{to: EUR, rates: {{USD: 0.5}}}}\n\
                 destinations:\n",
                fx.display()
            ),
        )
        .replacen(
            "    consent: {category: marketing, mode: implied}\n",
            &format!(
                "    consent: {{category: marketing, mode: implied}}\n    payload_transforms:\n\
                 \x20     - name: catalogue\n        path: {}\n        config: {{prefix: shopify_US_}}\n",
                prefix.display()
            ),
            1,
        )
}

#[test]
fn the_pixel_call_and_the_server_copy_agree_after_every_plugin() {
    let mock = MockTiktok::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.yaml");
    let text = switchyard_tests::allow_plugin_dir(&config_with_plugins(
        &mock.endpoint,
        &dir.path().join("data"),
    ));
    std::fs::write(&path, text).unwrap();
    let service = Service::start(&path, None);

    let cart = json!({"eventName": "Added To Cart", "eventID": "b-fx-1",
        "properties": {"product_id": "8001", "price": 30, "quantity": 2, "currency": "USD"},
        "profileProperties": {"$email": "ann@example.com"}, "aliases": ["urn:cart_token:c1"]});
    let a = collect(&service, &cart);
    assert_eq!(a.status, 202, "{}", a.body);
    let calls = a.body["destinations"][0]["calls"].as_array().unwrap();
    let track = calls
        .iter()
        .find(|c| c[0] == "track")
        .expect("a track call");
    assert_eq!(mock.wait_for_distinct(1, Duration::from_secs(20)), 1);
    let server = &mock.events()[0];
    // Field by field: the pixel fires what the Events API gets.
    assert_eq!(track[1], server["event"]);
    assert_eq!(track[3]["event_id"], server["event_id"]);
    for field in ["value", "currency", "contents", "content_type"] {
        assert_eq!(track[2][field], server["properties"][field], "{field}");
    }
    // ... after both plugins: in euros (the event plugin), with the catalogue's ids (the payload
    // plugin), not as the browser sent it.
    assert_eq!(track[1], "AddToCart");
    assert_eq!(track[3]["event_id"], "b-fx-1");
    assert_eq!(track[2]["currency"], "EUR");
    assert_eq!(track[2]["value"], 30.0, "2 × 30 USD × 0.5: {track}");
    assert_eq!(track[2]["contents"][0]["content_id"], "shopify_US_8001");
    assert_eq!(track[2]["contents"][0]["price"], 15.0);

    // A plugin fails on the event (no rate for GBP): the browser fires nothing, the server copy
    // goes to the dead letters, and the metrics say why the browser was told nothing.
    let mut pounds = cart.clone();
    pounds["eventID"] = "b-fx-2".into();
    pounds["properties"]["currency"] = "GBP".into();
    let a = collect(&service, &pounds);
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["destinations"], json!([]));
    let metrics = service.metrics();
    for line in [
        "switchyard_pixel_events_total{destination=\"tiktok\",status=\"fired\"} 1",
        "switchyard_pixel_events_total{destination=\"tiktok\",status=\"failed\"} 1",
        "switchyard_pixel_events_total{destination=\"old-pixel\",status=\"failed\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(mock.event_ids(), ["b-fx-1"], "no server copy either");
}

#[test]
fn concurrent_copies_from_the_browser_are_queued_and_fired_once() {
    let mock = MockTiktok::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.yaml");
    std::fs::write(&path, config(&mock.endpoint, &dir.path().join("data"))).unwrap();
    let service = Service::start(&path, None);
    let events: Vec<Value> = (0..10)
        .map(|i| {
            json!({"eventName": "Added To Cart", "eventID": format!("b-twice-{i}"),
                "properties": {"product_id": "8001", "price": 24.95, "quantity": 1, "currency": "EUR"},
                "profileProperties": {}, "aliases": ["urn:cart_token:c1"]})
        })
        .collect();
    let url = service.url(&format!("/v1/collect?key={KEY}"));
    let requests = (0..8)
        .flat_map(|_| events.iter())
        .map(|e| Request {
            method: "POST",
            url: url.clone(),
            headers: vec![("content-type", "text/plain".to_owned())],
            body: serde_json::to_vec(e).unwrap(),
        })
        .collect();
    let mut fired = std::collections::BTreeMap::new();
    for (i, a) in at_once(requests).into_iter().enumerate() {
        let mut a = a.unwrap();
        while a.status == 503 {
            // A copy that waited too long for the first one: sent again, as the script does.
            std::thread::sleep(Duration::from_millis(50));
            a = collect(&service, &events[i % 10]);
        }
        assert_eq!(a.status, 202, "{}", a.body);
        if a.body["duplicate"] != true {
            let calls = a.body["destinations"][0]["calls"].as_array().unwrap();
            assert_eq!(calls.last().unwrap()[1], "AddToCart", "{}", a.body);
            *fired.entry(a.body["event_id"].to_string()).or_insert(0) += 1;
        } else {
            assert_eq!(a.body["destinations"], json!([]));
        }
    }
    assert_eq!(fired.len(), 10, "{fired:?}");
    assert!(fired.values().all(|n| *n == 1), "one copy fires: {fired:?}");
    assert_eq!(mock.wait_for_distinct(10, Duration::from_secs(20)), 10);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(mock.event_ids().len(), 10, "each id delivered once");
}

/// The demo shop and the stand-in pixel, served on loopback (another origin than the service).
fn shop_server(sdk: String) -> (String, tokio::sync::oneshot::Sender<()>) {
    use axum::routing::get;
    let dir = switchyard_tests::root().join("tests/fixtures/browser");
    let shop = std::fs::read_to_string(dir.join("shop.html"))
        .unwrap()
        .replace("{{SDK}}", &sdk);
    let edge = std::fs::read_to_string(dir.join("edge.html"))
        .unwrap()
        .replace("{{SDK}}", &sdk);
    let pixel = std::fs::read_to_string(dir.join("pixel.js")).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let app =
                axum::Router::new()
                    .route(
                        "/shop.html",
                        get(move || async move { axum::response::Html(shop) }),
                    )
                    .route(
                        "/edge.html",
                        get(move || async move { axum::response::Html(edge) }),
                    )
                    .route(
                        "/pixel.js",
                        get(move || async move {
                            ([("content-type", "application/javascript")], pixel)
                        }),
                    );
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
    });
    (format!("http://{}", addr_rx.recv().unwrap()), tx)
}

/// Debian's Chromium, headless, on `url`: the DOM after the page settled (`--dump-dom`), or a
/// screenshot written to `screenshot`.
fn chromium(url: &str, screenshot: Option<&std::path::Path>) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--window-size=1000,900",
        "--virtual-time-budget=8000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()));
    match screenshot {
        Some(p) => cmd.arg(format!("--screenshot={}", p.display())),
        None => cmd.arg("--dump-dom"),
    };
    let out = cmd.arg(url).output().unwrap_or_else(|e| {
        panic!("cannot run chromium ({e}); the test command installs it: apt-get install chromium")
    });
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The ttq calls the stand-in pixel recorded, from the dumped DOM.
fn ttq_calls(dom: &str) -> Vec<Value> {
    let start = dom
        .find("<pre id=\"ttq-calls\">")
        .expect("the calls element")
        + 20;
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn a_demo_shop_in_chromium_fires_pixel_calls_with_the_server_event_ids() {
    let mock = MockTiktok::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.yaml");
    // The config names the shop's pixel stand-in, and the shop page names the service: the
    // service's port is chosen first, then the shop starts, then the config is written.
    let placeholder = "http://127.0.0.1:9/pixel.js";
    let text = config(&mock.endpoint, &dir.path().join("data")).replace(
        "    consent: {category: marketing, mode: implied}\n",
        &format!("    consent: {{category: marketing, mode: implied}}\n    pixel_loader_url: {placeholder}\n"),
    );
    let service_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sdk = format!("http://127.0.0.1:{service_port}/v1/sdk.js?key={KEY}");
    let (shop, _stop) = shop_server(sdk);
    std::fs::write(
        &path,
        text.replace(placeholder, &format!("{shop}/pixel.js")),
    )
    .unwrap();
    let service = Service::start(&path, Some(&format!("127.0.0.1:{service_port}")));
    let sdk_js = http("GET", &service.url("/v1/sdk.js"), &[], None).unwrap();
    assert_eq!(sdk_js.status, 200);

    let calls = ttq_calls(&chromium(&format!("{shop}/shop.html"), None));
    assert_eq!(
        calls[0],
        json!(["load", "CJQBODJC77UB4MRTGFRF"]),
        "{calls:?}"
    );
    let tracked: Vec<(&str, &str)> = calls
        .iter()
        .filter(|c| c[0] == "track")
        .map(|c| (c[1].as_str().unwrap(), c[3]["event_id"].as_str().unwrap()))
        .collect();
    let names: Vec<&str> = tracked.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["PageView", "ViewContent", "AddToCart", "InitiateCheckout"],
        "{calls:?}"
    );
    let kinds: Vec<&str> = calls.iter().filter_map(|c| c[0].as_str()).collect();
    assert!(
        kinds
            .iter()
            .all(|k| ["load", "identify", "track"].contains(k)),
        "every event goes through `track` (with its id), none through `page`: {calls:?}"
    );
    let identifies = calls.iter().filter(|c| c[0] == "identify").count();
    assert_eq!(identifies, 1, "identify once per identity: {calls:?}");
    let identify = calls.iter().find(|c| c[0] == "identify").expect("identify");
    assert_eq!(identify[1]["email"].as_str().unwrap().len(), 64, "hashed");
    let view = calls.iter().find(|c| c[1] == "ViewContent").unwrap();
    assert_eq!(view[2]["contents"][0]["content_id"], "44001");
    assert_eq!(view[2]["value"], 24.95);

    // Every browser event reached the Events API too, with the same event id and name (page
    // views included), and nothing else did.
    assert_eq!(mock.wait_for_distinct(4, Duration::from_secs(20)), 4);
    let server = mock.events();
    for (name, id) in &tracked {
        assert!(
            server
                .iter()
                .any(|e| e["event_id"] == *id && e["event"] == *name),
            "no server copy of {name} {id}: {server:?}"
        );
    }
    let mut server_pairs: Vec<(String, String)> = server
        .iter()
        .map(|e| (e["event"].to_string(), e["event_id"].to_string()))
        .collect();
    server_pairs.sort();
    server_pairs.dedup();
    let mut browser_pairs: Vec<(String, String)> = tracked
        .iter()
        .map(|(n, i)| (json!(n).to_string(), json!(i).to_string()))
        .collect();
    browser_pairs.sort();
    assert_eq!(
        browser_pairs, server_pairs,
        "one pixel call per server event, same name and id"
    );
    let page = server
        .iter()
        .find(|e| e["event"] == "PageView")
        .expect("page view");
    assert_eq!(page["page"]["url"], format!("{shop}/shop.html"));
    // The browser's language reaches the server copy as TikTok writes it (`en-US` → `en_US`).
    let locale = page["user"]["locale"].as_str().unwrap_or_default();
    assert!(
        locale.len() >= 2 && !locale.contains('-'),
        "user.locale from navigator.language: {page}"
    );

    // Consent denied: no pixel call, no server copy.
    let before = mock.events().len();
    let denied = ttq_calls(&chromium(&format!("{shop}/shop.html?consent=denied"), None));
    assert_eq!(denied, Vec::<Value>::new());
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        mock.events().len(),
        before,
        "nothing sent server-side either"
    );

    // Consent denied in text, as Google's consent mode writes it: nothing either.
    let denied = ttq_calls(&chromium(
        &format!("{shop}/shop.html?consent-text=denied"),
        None,
    ));
    assert_eq!(denied, Vec::<Value>::new());
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(mock.events().len(), before, "nothing sent server-side");

    // The tag twice, a blank e-mail, TikTok's `ttclid` cookie, a search cut mid-emoji: one page
    // view, and every event on both sides.
    let calls = ttq_calls(&chromium(&format!("{shop}/edge.html"), None));
    let names: Vec<&str> = calls
        .iter()
        .filter(|c| c[0] == "track")
        .filter_map(|c| c[1].as_str())
        .collect();
    assert_eq!(names, ["PageView", "Search"], "{calls:?}");
    assert_eq!(
        mock.wait_for_distinct(before + 2, Duration::from_secs(20)),
        before + 2
    );
    let search = mock
        .events()
        .into_iter()
        .find(|e| e["event"] == "Search")
        .expect("search");
    assert_eq!(search["properties"]["query"], "Tee \u{fffd}");
    assert_eq!(search["user"]["ttclid"], "COOKIECLID");

    // A screenshot of the demo page, for review.
    let shot = switchyard_tests::root().join("target/browser-demo.png");
    chromium(&format!("{shop}/shop.html"), Some(&shot));
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 1000)
            .unwrap_or(false)
    );
}

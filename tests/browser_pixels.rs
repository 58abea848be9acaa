//! `sdk.js` in a real browser (Chromium over WebDriver, see `support/browser.rs`), against
//! `switchyard serve` and the mock Events API: two pixels on one page each get their own calls;
//! events tracked offline wait in localStorage and arrive once, in order, with their own ids and
//! timestamps, when the network is back; an event tracked right before the page goes away still
//! arrives. Screenshots go to `target/`.

use serde_json::{Value, json};
use std::time::Duration;
use switchyard_tests::browser::{Browser, Pages, one_at_a_time};
use switchyard_tests::mock_tiktok::MockTiktok;
use switchyard_tests::service::*;

const KEY: &str = "pk-shop-123";
const PIXEL_A: &str = "CJQBODJC77UB4MRTGFRF";
const PIXEL_B: &str = "BBBBBBBBBBBBBBBBBBBB";

/// A TikTok destination named `name` for pixel `pixel`, its loader the pages' stand-in, with
/// `extra` YAML (destination fields, indented by four spaces).
fn destination(name: &str, pixel: &str, endpoint: &str, pages: &Pages, extra: &str) -> String {
    format!(
        "  - name: {name}\n    type: tiktok\n    pixel_id: {pixel}\n\
         \x20   access_token: \"${{SY_TIKTOK_TOKEN}}\"\n    domain: https://shop.example.com\n\
         \x20   sources: [web]\n    endpoint: {endpoint}\n    pixel_loader_url: {}/pixel.js\n{extra}",
        pages.url
    )
}

/// A shop: the pages, the mock Events API, and the service with `destinations`; the pages name
/// the service's script.
struct Shop {
    pages: Pages,
    mock: MockTiktok,
    _service: Service,
    _dir: tempfile::TempDir,
}

fn shop(destinations: impl Fn(&str, &Pages) -> String) -> Shop {
    let pages = Pages::start();
    let mock = MockTiktok::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "sources:\n  - {{name: web, kind: browser, public_key: {KEY}}}\ndestinations:\n{}\
         server: {{listen: \"127.0.0.1:0\", data_dir: \"{}\", linger_ms: 10}}\n",
        destinations(&mock.endpoint, &pages),
        dir.path().join("data").display()
    );
    let path = dir.path().join("switchyard.yaml");
    std::fs::write(&path, config).unwrap();
    let service = Service::start(&path, None);
    pages.set_sdk(&service.url(&format!("/v1/sdk.js?key={KEY}")));
    Shop {
        pages,
        mock,
        _service: service,
        _dir: dir,
    }
}

fn screenshot(browser: &Browser, name: &str) {
    let path = switchyard_tests::root().join("target").join(name);
    browser.screenshot(&path);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    assert!(size > 1000, "{}: {size} bytes", path.display());
}

/// The `track` calls each pixel instance recorded: `(event name, event_id)` per pixel.
fn tracks_by_pixel(browser: &Browser) -> serde_json::Map<String, Value> {
    let by = browser.execute("return window.__ttqByPixel || {}");
    let mut out = serde_json::Map::new();
    for (pixel, calls) in by.as_object().unwrap() {
        let tracks: Vec<Value> = calls
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c[0] == "track")
            .map(|c| json!([c[1], c[3]["event_id"]]))
            .collect();
        out.insert(pixel.clone(), tracks.into());
    }
    out
}

#[test]
fn two_pixels_on_one_page_each_get_their_own_calls() {
    let _one = one_at_a_time();
    let shop = shop(|endpoint, pages| {
        // The second pixel does not take product views: its calls must differ from the first's.
        destination("tiktok", PIXEL_A, endpoint, pages, "")
            + &destination(
                "tiktok-b",
                PIXEL_B,
                endpoint,
                pages,
                "    rows: [{source: Viewed Product, enabled: false}]\n",
            )
    });
    let browser = Browser::start();
    browser.goto(&format!("{}/two-pixels.html", shop.pages.url));
    browser.wait_for(
        "var b = window.__ttqByPixel || {}; return (b['CJQBODJC77UB4MRTGFRF'] || []).length >= 2 \
         && (b['BBBBBBBBBBBBBBBBBBBB'] || []).length >= 1",
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_millis(300)); // anything late would show now
    let tracks = tracks_by_pixel(&browser);
    let a = tracks[PIXEL_A].as_array().unwrap();
    let b = tracks[PIXEL_B].as_array().unwrap();
    let names = |t: &[Value]| t.iter().map(|c| c[0].clone()).collect::<Vec<_>>();
    assert_eq!(
        names(a),
        [json!("PageView"), json!("ViewContent")],
        "{tracks:?}"
    );
    assert_eq!(names(b), [json!("PageView")], "{tracks:?}");
    assert_eq!(
        a[0][1], b[0][1],
        "one page view, one event_id on both pixels"
    );
    let global = tracks
        .get("ttq")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    assert_eq!(
        global, 0,
        "no call on the global ttq (the first pixel loaded): {tracks:?}"
    );
    let loads: Vec<Value> = browser
        .execute("return window.__ttqCalls.filter(function (c) { return c[0] == 'load'; })")
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(loads.len(), 2, "each pixel loaded once: {loads:?}");
    // The server copies carry the ids the pixels fired.
    assert_eq!(shop.mock.wait_for_distinct(2, Duration::from_secs(20)), 2);
    let ids = shop.mock.event_ids();
    for call in a {
        assert!(
            ids.contains(&call[1].as_str().unwrap().to_owned()),
            "{ids:?}"
        );
    }
    screenshot(&browser, "browser-two-pixels.png");
}

/// The events waiting in the page's localStorage queue.
fn waiting(browser: &Browser) -> Vec<Value> {
    let q = browser.execute("return JSON.parse(localStorage.getItem('_sy_queue') || '[]')");
    q.as_array().unwrap().clone()
}

#[test]
fn events_tracked_offline_arrive_once_in_order_when_the_network_is_back() {
    let _one = one_at_a_time();
    let shop = shop(|endpoint, pages| destination("tiktok", PIXEL_A, endpoint, pages, ""));
    let browser = Browser::start();
    browser.goto(&format!("{}/offline.html", shop.pages.url));
    assert_eq!(
        shop.mock.wait_for_distinct(1, Duration::from_secs(20)),
        1,
        "the page view"
    );
    browser.wait_for(
        "return JSON.parse(localStorage.getItem('_sy_queue') || '[]').length == 0",
        Duration::from_secs(10),
    );

    browser.set_offline(true);
    assert_eq!(browser.execute("return navigator.onLine"), false);
    browser.execute(
        "[1, 2, 3].forEach(function (i) { switchyard('track', 'Added To Cart', \
         {product_id: '800' + i, price: 10 * i, quantity: 1, currency: 'EUR'}); }); return true",
    );
    let queued = waiting(&browser);
    assert_eq!(queued.len(), 3, "{queued:?}");
    let ids: Vec<&str> = queued
        .iter()
        .map(|e| e["eventID"].as_str().unwrap())
        .collect();
    let stamps: Vec<i64> = queued
        .iter()
        .map(|e| e["timestamp"].as_i64().unwrap())
        .collect();
    // Time passes offline: the events must keep the time they happened.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        shop.mock.events().len(),
        1,
        "nothing left the browser while offline"
    );
    screenshot(&browser, "browser-offline.png");

    let back_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    browser.set_offline(false);
    assert_eq!(shop.mock.wait_for_distinct(4, Duration::from_secs(30)), 4);
    browser.wait_for(
        "return JSON.parse(localStorage.getItem('_sy_queue') || '[]').length == 0",
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(500)); // a second copy would show now
    let events = shop.mock.events();
    let carts: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "AddToCart")
        .collect();
    let arrived: Vec<&str> = carts
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(arrived, ids, "once each, in the order tracked");
    for (event, stamp) in carts.iter().zip(&stamps) {
        assert_eq!(
            event["event_time"], *stamp,
            "the time it was tracked: {event}"
        );
        assert!(*stamp < back_at, "tracked before the network came back");
    }
    let values: Vec<&Value> = carts.iter().map(|e| &e["properties"]["value"]).collect();
    assert_eq!(values, [&json!(10.0), &json!(20.0), &json!(30.0)]);
    // The pixel fires them too, in order, with the same ids.
    let tracks = tracks_by_pixel(&browser);
    let fired: Vec<&str> = tracks[PIXEL_A]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c[0] == "AddToCart")
        .map(|c| c[1].as_str().unwrap())
        .collect();
    assert_eq!(fired, ids);
}

#[test]
fn an_event_tracked_right_before_the_page_goes_away_still_arrives() {
    let _one = one_at_a_time();
    let shop = shop(|endpoint, pages| destination("tiktok", PIXEL_A, endpoint, pages, ""));
    let browser = Browser::start();
    // Every request takes 400 ms: the page is gone before any answer comes back.
    browser.cdp("Network.enable", json!({}));
    browser.cdp(
        "Network.emulateNetworkConditions",
        json!({"offline": false, "latency": 400, "downloadThroughput": -1, "uploadThroughput": -1}),
    );
    browser.goto(&format!("{}/leave.html", shop.pages.url));
    browser.wait_for(
        "return location.href == 'about:blank'",
        Duration::from_secs(20),
    );
    assert_eq!(shop.mock.wait_for_distinct(2, Duration::from_secs(20)), 2);
    std::thread::sleep(Duration::from_millis(500)); // a second copy would show now
    let events = shop.mock.events();
    let leave = format!("{}/leave.html", shop.pages.url);
    let checkout: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "InitiateCheckout")
        .collect();
    assert_eq!(checkout.len(), 1, "{events:?}");
    assert_eq!(checkout[0]["page"]["url"], leave);
    assert_eq!(checkout[0]["properties"]["value"], 24.95);
    let views = events.iter().filter(|e| e["event"] == "PageView").count();
    assert_eq!(views, 1, "{events:?}");
}

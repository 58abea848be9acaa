//! The web console (`/console`) and the admin API behind one token: every route and call refuses
//! a request without the token (401), with a wrong one, or with a wrong cookie; the login sets an
//! HttpOnly, SameSite=Strict cookie; without `server.admin` none of it exists (404). Then the
//! console in Chromium (`support/browser.rs`) against `serve` and the mock Events API: log in,
//! preview a mapping, see events arrive with their statuses, open a journey, deactivate the
//! destination and see new events skipped, retry a dead letter. Assertions are on the DOM;
//! screenshots go to `target/console-*.png`.

use serde_json::{Value, json};
use std::time::Duration;
use switchyard_tests::browser::{Browser, one_at_a_time};
use switchyard_tests::mock_tiktok::{Fault, MockTiktok};
use switchyard_tests::service::*;

/// Every console route and admin API call: method, path, JSON body.
const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/console", ""),
    ("GET", "/console/console.js", ""),
    ("GET", "/console/console.css", ""),
    ("GET", "/console/samples.ndjson", ""),
    ("POST", "/console/logout", ""),
    ("POST", "/admin/preview", r#"{"event": {}}"#),
    ("GET", "/admin/destinations", ""),
    ("POST", "/admin/destinations/tiktok/activate", ""),
    ("POST", "/admin/destinations/tiktok/deactivate", ""),
    ("GET", "/admin/dead-letters", ""),
    ("POST", "/admin/dead-letters/retry", "{}"),
    ("POST", "/admin/dead-letters/drop", r#"{"ids": []}"#),
    ("POST", "/admin/reload", ""),
    ("GET", "/admin/events", ""),
    ("GET", "/admin/events/1", ""),
    ("GET", "/admin/tap", ""),
];

/// An answer: status, headers, body text.
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

/// One request, redirects not followed (the login answers 303); a body is sent as JSON.
fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    send_as(method, url, headers, ("application/json", body))
}

/// The login form posted with `token`.
fn post_login(c: &Console, token: &str) -> Reply {
    let form = format!("token={token}");
    let body = ("application/x-www-form-urlencoded", form.as_str());
    send_as("POST", &c.service.url("/console/login"), &[], body)
}

/// [`send`] with a body of the given content type: `(content type, body)`.
fn send_as(method: &str, url: &str, headers: &[(&str, &str)], body: (&str, &str)) -> Reply {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        switchyard_tiktok::transport::install_crypto_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = client.request(method, url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (content_type, body) = body;
        if !body.is_empty() {
            req = req
                .header("content-type", content_type)
                .body(body.to_owned());
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        // A live stream (the tap) has no end: its first bytes are enough.
        let text = match tokio::time::timeout(Duration::from_secs(2), r.text()).await {
            Ok(t) => t.unwrap_or_default(),
            Err(_) => String::new(),
        };
        Reply {
            status,
            headers,
            text,
        }
    })
}

/// The service with the console on, the mock Events API, and their folder.
struct Console {
    service: Service,
    mock: MockTiktok,
    _dir: tempfile::TempDir,
}

fn console(admin: &str) -> Console {
    let mock = MockTiktok::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let config = serve_config(
        &mock.endpoint,
        &dir.path().join("data"),
        admin,
        ", max_attempts: 2",
    );
    let path = dir.path().join("switchyard.yaml");
    std::fs::write(&path, config).unwrap();
    Console {
        service: Service::start(&path, None),
        mock,
        _dir: dir,
    }
}

#[test]
fn every_console_route_and_admin_call_needs_the_token() {
    let c = console(ADMIN);
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let wrong_cookie = "switchyard_admin=not-the-token";
    for (method, path, body) in ROUTES {
        let url = c.service.url(path);
        for headers in [
            vec![],
            vec![("authorization", "Bearer not-the-token")],
            vec![("cookie", wrong_cookie)],
        ] {
            let r = send(method, &url, &headers, body);
            assert_eq!(
                r.status, 401,
                "{method} {path} with {headers:?}: {}",
                r.text
            );
            if *path != "/console" {
                let answer: Value = serde_json::from_str(&r.text)
                    .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {}", r.text));
                assert!(
                    answer["error"].as_str().is_some(),
                    "{method} {path}: {answer}"
                );
            }
            assert!(
                !r.text.contains(ADMIN_TOKEN),
                "{method} {path} shows the token"
            );
        }
        let r = send(method, &url, &[("authorization", &bearer)], body);
        assert_ne!(r.status, 401, "{method} {path} with the token");
        // A route that does not exist answers 404 with no body; `/admin/events/1` answers 404
        // with a JSON error (no such journey) and counts.
        assert!(
            !(r.status == 404 && r.text.is_empty()),
            "{method} {path} does not exist"
        );
    }
    // Without the token, the page is the login form.
    let page = send("GET", &c.service.url("/console"), &[], "");
    assert!(page.text.contains(r#"name="token""#), "{}", page.text);
    // The style sheet, the script and the page come with the token, from this origin only.
    let cookie = format!("switchyard_admin={ADMIN_TOKEN}");
    let js = send(
        "GET",
        &c.service.url("/console/console.js"),
        &[("cookie", &cookie)],
        "",
    );
    assert_eq!(js.status, 200);
    assert!(js.text.contains("/admin/preview"));
    let csp = js.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
}

#[test]
fn the_login_sets_a_strict_http_only_cookie() {
    let c = console(ADMIN);
    let wrong = post_login(&c, "not-the-token");
    assert_eq!(wrong.status, 401);
    assert!(wrong.headers.get("set-cookie").is_none());
    let right = post_login(&c, ADMIN_TOKEN);
    assert_eq!(right.status, 303);
    assert_eq!(right.headers["location"], "/console");
    let cookie = right.headers["set-cookie"].to_str().unwrap().to_owned();
    for part in ["switchyard_admin=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let value = cookie.split(';').next().unwrap();
    let page = send("GET", &c.service.url("/console"), &[("cookie", value)], "");
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Mapping preview"), "{}", page.text);
    let out = send(
        "POST",
        &c.service.url("/console/logout"),
        &[("cookie", value)],
        "",
    );
    assert_eq!(out.status, 303);
    assert!(
        out.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

#[test]
fn logins_from_one_address_are_limited() {
    let c = console(ADMIN);
    // The first tries are answered (a wrong token: 401); then 429, with how long to wait.
    let mut answers = Vec::new();
    for _ in 0..15 {
        let r = post_login(&c, "not-the-token");
        assert!(!r.text.contains(ADMIN_TOKEN));
        let (status, retry_after) = (r.status, r.headers.get("retry-after"));
        let retry_after = retry_after.map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        answers.push((status, retry_after));
        if status == 429 {
            break;
        }
    }
    assert!(
        answers.len() > 10,
        "fewer than 10 tries were let through: {answers:?}"
    );
    assert!(answers[..10].iter().all(|&(s, _)| s == 401), "{answers:?}");
    let (status, retry_after) = *answers.last().unwrap();
    assert_eq!(status, 429, "never limited: {answers:?}");
    assert!(
        retry_after.is_some_and(|s| (1..=6).contains(&s)),
        "{answers:?}"
    );
}

#[test]
fn without_admin_settings_there_is_no_console() {
    let c = console("");
    for (method, path, body) in ROUTES {
        let bearer = format!("Bearer {ADMIN_TOKEN}");
        let r = send(
            method,
            &c.service.url(path),
            &[("authorization", &bearer)],
            body,
        );
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
    }
    // The console alone can be turned off; the admin API stays.
    let c = console(", admin: {token: \"${SY_ADMIN_TOKEN}\", console: false}");
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let page = send(
        "GET",
        &c.service.url("/console"),
        &[("authorization", &bearer)],
        "",
    );
    assert_eq!(page.status, 404);
    let preview = send(
        "POST",
        &c.service.url("/admin/preview"),
        &[("authorization", &bearer)],
        r#"{"event": {"event_name": "x"}}"#,
    );
    assert_ne!(preview.status, 404);
}

/// `POST /admin/preview` with the token.
fn preview(c: &Console, body: &Value) -> (u16, Value) {
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let r = send(
        "POST",
        &c.service.url("/admin/preview"),
        &[("authorization", &bearer)],
        &body.to_string(),
    );
    (
        r.status,
        serde_json::from_str(&r.text).unwrap_or(Value::String(r.text)),
    )
}

#[test]
fn the_preview_maps_like_map_and_says_where_an_event_is_wrong() {
    let c = console(ADMIN);
    let event = json!({"event_name": "Placed Order", "event_id": "o-1", "timestamp": unix_now(),
        "properties": {"order_id": "1001", "value": 49.9, "currency": "EUR",
            "products": [{"product_id": "8001", "price": 49.9, "quantity": 1}]},
        "profile_properties": {"$email": "Jane@Example.com"}, "aliases": ["urn:cart_token:c1"]});
    let (status, answer) = preview(&c, &json!({"event": event}));
    assert_eq!(status, 200, "{answer}");
    let tiktok = &answer["events"][0]["destinations"][0];
    assert_eq!(tiktok["destination"], "tiktok");
    assert_eq!(tiktok["status"], "sent", "{answer}");
    assert_eq!(tiktok["data"][0]["event"], "Purchase", "{answer}");
    assert_eq!(tiktok["data"][0]["event_id"], "o-1", "{answer}");
    // PII hashed as TikTok requires (the source event is shown as given); no token shown.
    let sent = tiktok.to_string();
    assert!(!sent.contains("Jane@Example.com"), "{sent}");
    assert!(
        sent.contains("8c87b489ce35cf2e"),
        "the hashed e-mail: {sent}"
    );
    let text = answer.to_string();
    assert!(!text.contains(TOKEN), "{text}");
    assert!(tiktok["requests"][0].is_object(), "{answer}");
    // Nothing was sent.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.mock.requests(), 0);
    // Text that is not JSON: its line and column.
    let text = "{\n  \"event_name\": \"Placed Order\",\n  \"event_id\": oops\n}";
    let (status, answer) = preview(&c, &json!({"event": text}));
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["line"], 3, "{answer}");
    assert_eq!(answer["column"], 15, "{answer}");
    // An event that breaks the spec: the line of the field (the top-level one, not a property of
    // the same name before it).
    let text = "{\n  \"event_name\": \"Placed Order\",\n  \"properties\": {\"timestamp\": 1},\n  \"event_id\": \"o-2\",\n  \"timestamp\": \"yesterday\",\n  \"profile_properties\": {}, \"aliases\": [\"urn:cart_token:c\"]\n}";
    let (status, answer) = preview(&c, &json!({"event": text}));
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["line"], 5, "{answer}");
    assert_eq!(answer["column"], 3, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("timestamp"),
        "{answer}"
    );
    // Unknown names are refused, not ignored.
    let (status, answer) = preview(&c, &json!({"event": event, "destination": "nope"}));
    assert_eq!(status, 422, "{answer}");
    let (status, answer) = preview(&c, &json!({"event": event, "source": "nope"}));
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("server"),
        "{answer}"
    );
}

/// A PNG of the page at `target/console-NAME.png`.
fn screenshot(browser: &Browser, name: &str) {
    let path = switchyard_tests::root()
        .join("target")
        .join(format!("console-{name}.png"));
    browser.screenshot(&path);
}

const WAIT: Duration = Duration::from_secs(30);

/// Clicks what `selector` finds (a script, as keyboard and mouse users reach the same button).
fn click(browser: &Browser, selector: &str) {
    let script = format!(
        "const b = document.querySelector({selector:?}); if (!b) return false; b.click(); return true;"
    );
    assert_eq!(browser.execute(&script), json!(true), "no {selector}");
}

/// Confirms the dialog the console opens before a switch or a discard.
fn confirm(browser: &Browser) {
    browser.wait_for("return document.querySelector('#confirm').open", WAIT);
    click(browser, "#confirm-ok");
}

fn view(browser: &Browser, name: &str) {
    browser.execute(&format!("location.hash = '#{name}'; return true;"));
    let shown = format!("return !document.querySelector('#{name}').hidden");
    browser.wait_for(&shown, WAIT);
}

/// Waits until the event log shows `event_id` with one of `statuses` (`a|b`) at `tiktok`.
fn wait_for_status(browser: &Browser, event_id: &str, statuses: &str) {
    let script = format!(
        "const b = document.querySelector('tr[data-event-id=\"{event_id}\"] [data-destination=\"tiktok\"]'); \
         return !!b && '{statuses}'.split('|').includes(b.dataset.status);"
    );
    browser.wait_for(&script, WAIT);
}

/// Opens the journey of `event_id` from the event log; its text.
fn open_journey(browser: &Browser, event_id: &str) -> String {
    click(browser, &format!("tr[data-event-id=\"{event_id}\"] button"));
    let title = format!(
        "return !document.querySelector('#journey').hidden && \
         document.querySelector('#journey-title').textContent.includes('{event_id}')"
    );
    browser.wait_for(&title, WAIT);
    browser
        .execute("return document.querySelector('#journey-body').textContent")
        .as_str()
        .unwrap()
        .to_owned()
}

/// The attempts of the journey shown, at `tiktok`: `[outcome, code]` per row.
fn attempts_shown(browser: &Browser) -> Value {
    browser.execute(
        "return [...document.querySelectorAll('#journey-body [data-destination=\"tiktok\"] .attempts tbody tr')]\
           .map(r => [r.dataset.outcome, r.querySelector('.code').textContent]);",
    )
}

fn log_in(browser: &Browser, c: &Console) {
    browser.goto(&c.service.url("/console"));
    browser.wait_for("return !!document.querySelector('#token')", WAIT);
    screenshot(browser, "login");
    browser.execute(&format!(
        "document.querySelector('#token').value = '{ADMIN_TOKEN}'; \
         document.querySelector('#login').submit(); return true;"
    ));
    browser.wait_for(
        "return !!document.querySelector('#destination-table')",
        WAIT,
    );
}

fn destinations_and_events(browser: &Browser, c: &Console) {
    view(browser, "destinations");
    let row = "document.querySelector('#destination-table tr[data-destination=\"tiktok\"]')";
    browser.wait_for(
        &format!("return {row} && {row}.textContent.includes('Active')"),
        WAIT,
    );
    assert_eq!(
        browser.execute(&format!(
            "return {row}.querySelectorAll('svg polyline').length"
        )),
        json!(2)
    );
    view(browser, "events");
    // The log follows the live tap (not polling).
    browser.wait_for(
        "return document.querySelector('#event-log').dataset.live === 'stream'",
        WAIT,
    );
    let a = post_events(
        &c.service.url("/v1/events"),
        &json!(cart_events("ok", 0..3)),
    )
    .unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    for i in 0..3 {
        wait_for_status(browser, &format!("ok-{i}"), "success");
    }
    screenshot(browser, "events");
    let journey = open_journey(browser, "ok-0");
    let line = {
        let text =
            std::fs::read_to_string(switchyard_tests::root().join("mappings/tiktok.yaml")).unwrap();
        1 + text
            .lines()
            .position(|l| l.trim() == "- source: Added To Cart")
            .unwrap()
    };
    for part in [
        "Source event",
        "ok-0",
        "Matched rows",
        "Added To Cart → AddToCart",
        &format!("<built-in>/mappings/tiktok.yaml:{line}"),
        "Payload",
        "AddToCart",
        "Pixel calls",
        "Attempts",
        "sent",
    ] {
        assert!(
            journey.contains(part),
            "{part} not in the journey: {journey}"
        );
    }
    // The pixel call with its params: the product of the event.
    let pixel = browser.execute(
        "return [...document.querySelectorAll('#journey-body table.pixel tbody tr')]\
           .map(r => [...r.cells].map(c => c.textContent));",
    );
    let track = pixel
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0] == "track")
        .unwrap_or_else(|| panic!("no track call: {pixel}"));
    assert_eq!(track[1], "AddToCart");
    assert!(
        track[2]
            .as_str()
            .unwrap()
            .contains("\"content_id\": \"p0\""),
        "{track}"
    );
    browser.execute(
        "document.querySelector('#journey-body [data-destination=\"tiktok\"]').scrollIntoView(); return true;",
    );
    screenshot(browser, "journey");

    // A send answered with a server error is tried again, then delivered: Retry, then Success,
    // with each attempt and the platform's code.
    c.mock.fail_next([Fault::Code(50002, "Internal error")]);
    let a = post_events(
        &c.service.url("/v1/events"),
        &json!(cart_events("rt", 0..1)),
    )
    .unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    wait_for_status(browser, "rt-0", "success");
    let badge = browser.execute(
        "return document.querySelector('tr[data-event-id=\"rt-0\"] [data-destination=\"tiktok\"]').textContent",
    );
    assert_eq!(badge, "tiktok: Success after 1 retry");
    open_journey(browser, "rt-0");
    assert_eq!(
        attempts_shown(browser),
        json!([["retry", "50002"], ["sent", ""]])
    );
    browser
        .execute("document.querySelector('#journey-body .pixel').scrollIntoView(); return true;");
    screenshot(browser, "journey-retry");
}

fn deactivate(browser: &Browser, c: &Console) {
    view(browser, "destinations");
    let sent = "document.querySelector('tr[data-destination=\"tiktok\"] [data-count=\"sent\"]')";
    // ok-0..2 and rt-0.
    browser.wait_for(&format!("return {sent}.textContent === '4'"), WAIT);
    screenshot(browser, "destinations");
    click(browser, "tr[data-destination=\"tiktok\"] button.switch");
    confirm(browser);
    let row = "document.querySelector('#destination-table tr[data-destination=\"tiktok\"]')";
    browser.wait_for(
        &format!("return {row}.textContent.includes('Deactivated')"),
        WAIT,
    );
    let a = post_events(
        &c.service.url("/v1/events"),
        &json!(cart_events("off", 0..1)),
    )
    .unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    view(browser, "events");
    wait_for_status(browser, "off-0", "skipped");
    assert!(!c.mock.event_ids().contains(&"off-0".to_owned()));
    view(browser, "destinations");
    click(browser, "tr[data-destination=\"tiktok\"] button.switch");
    confirm(browser);
    browser.wait_for(
        &format!("return {row}.textContent.includes('Active')"),
        WAIT,
    );
}

fn dead_letters(browser: &Browser, c: &Console) {
    c.mock
        .fail_always(Some(Fault::Code(40002, "Invalid parameter: event_time")));
    let a = post_events(
        &c.service.url("/v1/events"),
        &json!(cart_events("dl", 0..1)),
    )
    .unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    view(browser, "events");
    wait_for_status(browser, "dl-0", "dead_lettered|failure");
    // TikTok's code is a field of its own, beside its message.
    let journey = open_journey(browser, "dl-0");
    assert!(journey.contains("Failure (dead-lettered)"), "{journey}");
    assert_eq!(attempts_shown(browser), json!([["refused", "40002"]]));
    assert!(
        journey.contains("Invalid parameter: event_time"),
        "{journey}"
    );
    c.mock.fail_always(None);
    view(browser, "dead-letters");
    let row = "document.querySelector('#dead-letter-table tbody tr')";
    browser.wait_for(
        &format!("return !!{row} && {row}.textContent.includes('Invalid parameter: event_time')"),
        WAIT,
    );
    screenshot(browser, "dead-letters");
    click(browser, "#dead-letter-table tbody tr button");
    browser.wait_for(
        "return document.querySelectorAll('#dead-letter-table tbody tr').length === 0",
        WAIT,
    );
    assert!(
        c.mock.wait_for_distinct(5, WAIT) >= 5,
        "the retried event never arrived"
    );
    assert!(c.mock.event_ids().contains(&"dl-0".to_owned()));
}

fn preview_view(browser: &Browser) {
    view(browser, "preview");
    browser.wait_for(
        "return document.querySelector('#preview-sample').options.length > 5",
        WAIT,
    );
    let pick = "const s = document.querySelector('#preview-sample'); \
                const i = [...s.options].findIndex(o => o.textContent.startsWith('Placed Order')); \
                s.selectedIndex = i; s.dispatchEvent(new Event('change')); \
                document.querySelector('#preview-form').requestSubmit(); return i;";
    assert!(
        browser.execute(pick).as_i64().unwrap() > 0,
        "no Placed Order sample"
    );
    let card = "document.querySelector('#preview-result [data-destination=\"tiktok\"]')";
    browser.wait_for(
        &format!("return !!{card} && !!{card}.querySelector('.payloads')"),
        WAIT,
    );
    let text = browser.execute(&format!("return {card}.textContent"));
    let text = text.as_str().unwrap();
    assert!(text.contains("\"event\": \"Purchase\""), "{text}");
    assert!(text.contains("sent"), "{text}");
    screenshot(browser, "preview");
    // Broken JSON: the error names the line, and the line is selected in the text area.
    browser.execute(
        "document.querySelector('#preview-event').value = '{\\n  \"event_name\": \"x\",\\n  \"event_id\": oops\\n}'; \
         document.querySelector('#preview-form').requestSubmit(); return true;",
    );
    browser.wait_for(
        "return document.querySelector('#preview-error').textContent.includes('line 3')",
        WAIT,
    );
    let selected = browser.execute(
        "const t = document.querySelector('#preview-event'); return [t.selectionStart, document.activeElement === t];",
    );
    // Line 3 starts after "{\n" and "  \"event_name\": \"x\",\n" (2 + 21 characters).
    assert_eq!(selected, json!([37, true]), "the selection");
    screenshot(browser, "preview-error");
}

#[test]
fn the_console_in_chromium() {
    let _one = one_at_a_time();
    let c = console(ADMIN);
    let browser = Browser::start();
    log_in(&browser, &c);
    preview_view(&browser);
    destinations_and_events(&browser, &c);
    deactivate(&browser, &c);
    dead_letters(&browser, &c);
}

#!/usr/bin/env python3
"""A straightforward Python mapper of the default TikTok table: mapper.js, line for line, with
json, hashlib.sha256 and urllib.parse. The "hand-written script" that `switchyard map` is compared
with (benchmarks/peers/run). One output line per input line."""

import hashlib
import json
import re
import sys
import time
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

ROWS = {
    "$page_load": [("PageView", "both", [])],
    "Viewed Product": [("ViewContent", "both", ["product"])],
    "Viewed Collection": [("ViewContent", "both", ["items"])],
    "Added To Cart": [("AddToCart", "both", ["product"])],
    "Started Checkout": [("InitiateCheckout", "both", ["items", "value"])],
    "Added Payment Info": [("AddPaymentInfo", "both", ["items", "value"])],
    "Placed Order": [
        ("Purchase", "server", ["items", "value", "order_id"]),
        ("NewCustomerPurchase", "server", ["items", "value", "order_id"], "new"),
    ],
    "Started Subscription": [("Subscribe", "server", ["items", "value", "order_id"])],
    "Placed Recurring Subscription Order": [
        ("RecurringSubscriptionPaymentSucceeded", "server", ["items", "value", "order_id"])
    ],
    "Searched": [("Search", "both", ["query"])],
    "Subscribed To Newsletter": [("CompleteRegistration", "both", [])],
}
CAMEL = [
    ("eventName", "event_name"),
    ("eventID", "event_id"),
    ("eventId", "event_id"),
    ("profileProperties", "profile_properties"),
]
DIGEST = re.compile(r"^[0-9a-f]{64}$")
NON_DIGITS = re.compile(r"[^0-9]")


def hashed(s):
    return s if DIGEST.match(s) else hashlib.sha256(s.encode()).hexdigest()


def num(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str) and v != "":
        return float(v)
    return None


def present(v):
    return v is not None and v != ""


def identities(ev, key, alias, norm):
    found = [hashed(norm(str(v))) for v in (ev["profile_properties"].get(key), ev["properties"].get(key)) if present(v)]
    if not found:
        found = [hashed(norm(a[len(alias):])) for a in ev["aliases"] if a.startswith(alias)]
    unique = list(dict.fromkeys(found))
    if not unique:
        return None
    return unique[0] if len(unique) == 1 else unique


def e164(s):
    return "+" + NON_DIGITS.sub("", s)


def first(*values):
    for v in values:
        if v is not None:
            return v
    return None


def user(ev):
    p, pp, u = ev["properties"], ev["profile_properties"], {}

    def put(k, v):
        if present(v):
            u[k] = v

    put("email", identities(ev, "$email", "urn:email:", lambda s: s.strip().lower()))
    put("phone", identities(ev, "$phone_number", "urn:phone:", e164))
    put("external_id", identities(ev, "$external_id", "urn:user_id:", lambda s: s.strip()))
    ttclid = None
    url = p.get("$url")
    if isinstance(url, str) and "ttclid=" in url:
        ttclid = (parse_qs(urlsplit(url).query).get("ttclid") or [None])[0]
    put("ttclid", first(ttclid, pp.get("$ttclid"), p.get("$ttclid"), pp.get("ttclid")))
    put("ttp", first(pp.get("$ttp"), pp.get("_ttp"), p.get("$ttp"), p.get("_ttp")))
    put("ip", first(pp.get("$ip"), p.get("$ip")))
    put("user_agent", first(pp.get("$user_agent"), p.get("$user_agent")))
    return u or None


def content(item):
    c = {}
    cid = first(item.get("variant_id"), item.get("product_id"), item.get("sku"))
    if cid is not None:
        c["content_id"] = str(cid)
    c["content_type"] = "product"
    if "name" in item:
        c["content_name"] = item["name"]
    if "quantity" in item:
        c["quantity"] = int(num(item["quantity"]))
    if "price" in item:
        c["price"] = num(item["price"])
    if "vendor" in item:
        c["brand"] = item["vendor"]
    return c


def value(p):
    if "total_price" in p:
        return num(p["total_price"])
    if isinstance(p.get("items"), list):
        return sum(num(i.get("price")) * first(num(i.get("quantity")), 1) for i in p["items"])
    if "price" in p:
        return num(p["price"]) * first(num(p.get("quantity")), 1)
    return None


def payload(target, parts, ev):
    p = ev["properties"]
    out = {"event": target, "event_id": ev["event_id"], "event_time": ev["timestamp"]}
    u = user(ev)
    if u:
        out["user"] = u
    page = {}
    if p.get("$url"):
        page["url"] = p["$url"]
    if p.get("referrer"):
        page["referrer"] = p["referrer"]
    if page:
        out["page"] = page
    props = {}
    for part in parts:
        if part == "product":
            props["contents"] = [content(p)]
            props["content_type"] = "product"
            if p.get("currency"):
                props["currency"] = p["currency"]
            props["value"] = value(p)
        elif part == "items":
            props["contents"] = [content(i) for i in p.get("items") or []]
            props["content_type"] = "product"
            if p.get("currency"):
                props["currency"] = p["currency"]
        elif part == "value":
            props["value"] = value(p)
        elif part == "order_id" and "id" in p:
            props["order_id"] = str(p["id"])
        elif part == "query" and "query" in p:
            props["query"] = p["query"]
    if props:
        out["properties"] = props
    return out


def timestamp(t, now):
    if t is None:
        return now
    if isinstance(t, int):
        return t
    return int(datetime.fromisoformat(t).timestamp())


def map_line(text, no, now):
    try:
        ev = json.loads(text)
        for camel, snake in CAMEL:
            if camel in ev:
                ev[snake] = ev.pop(camel)
        if not isinstance(ev.get("event_name"), str) or not isinstance(ev.get("event_id"), str):
            raise ValueError("envelope")
        if not isinstance(ev.get("properties"), dict) or not isinstance(ev.get("profile_properties"), dict):
            raise ValueError("envelope")
        if not isinstance(ev.get("aliases"), list):
            raise ValueError("envelope")
        ev["timestamp"] = timestamp(ev.get("timestamp"), now)
    except (ValueError, TypeError, AttributeError) as e:
        return {"line": no, "destinations": {"tiktok": {"status": "invalid", "reason": str(e)}}}
    head = {"line": no, "event_id": ev["event_id"], "event_name": ev["event_name"]}
    consent = ev["profile_properties"].get("$consent")
    if isinstance(consent, dict) and consent.get("marketing") == "denied":
        return {**head, "destinations": {"tiktok": {"status": "skipped", "reason": "consent"}}}
    tags = ev["properties"].get("tags")
    if ev["event_name"] == "Placed Order" and isinstance(tags, (str, list)) and "test" in tags:
        return {**head, "destinations": {"tiktok": {"status": "filtered", "reason": "drop test orders"}}}
    rows = [r for r in ROWS.get(ev["event_name"], []) if len(r) < 4 or ev["properties"].get("$is_new_customer") is True]
    if not rows:
        return {**head, "destinations": {"tiktok": {"status": "skipped", "reason": "no row"}}}
    outcome = {"status": "sent", "data": [payload(r[0], r[2], ev) for r in rows]}
    client = [r[0] for r in rows if r[1] == "both"]
    if client:
        outcome["client"] = client
    return {**head, "destinations": {"tiktok": outcome}}


def main():
    now = int(time.time())
    out = sys.stdout
    for no, text in enumerate(sys.stdin, start=1):
        if text.strip():
            out.write(json.dumps(map_line(text, no, now), separators=(",", ":"), ensure_ascii=False))
            out.write("\n")


if __name__ == "__main__":
    main()

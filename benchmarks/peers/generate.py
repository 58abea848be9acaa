#!/usr/bin/env python3
"""Writes N realistic source events (NDJSON) to stdout: the sample events of examples/events.ndjson
in the mix of the criterion benches (engine/service/benches/common/mod.rs: 40% page loads, 25%
product views, ...), each with a unique `event_id`. Usage: generate.py N [events.ndjson]."""

import json
import sys

MIX = [
    ("$page_load", 40),
    ("Viewed Product", 25),
    ("Viewed Collection", 10),
    ("Added To Cart", 8),
    ("Searched", 4),
    ("Started Checkout", 4),
    ("Added Payment Info", 3),
    ("Placed Order", 3),
    ("Subscribed To Newsletter", 1),
    ("Started Subscription", 1),
    ("Placed Recurring Subscription Order", 1),
]


def main():
    n = int(sys.argv[1])
    source = sys.argv[2] if len(sys.argv) > 2 else "examples/events.ndjson"
    samples = {}
    with open(source, encoding="utf-8") as f:
        for line in f:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event_id"):
                samples.setdefault(event.get("event_name"), []).append(event)
    hundred = []
    for name, share in MIX:
        events = samples[name]
        hundred.extend(events[i % len(events)] for i in range(share))
    out = sys.stdout
    for i in range(n):
        event = dict(hundred[i % len(hundred)])
        event["event_id"] = f"{event['event_id']}-{i:07d}"
        out.write(json.dumps(event, separators=(",", ":"), ensure_ascii=False))
        out.write("\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The training load of `scripts/build-pgo`: runs an instrumented `switchyard` the way users do, so
that the profile it writes covers the paths that matter. Not the benchmarks' input: the sample
events of examples/events.ndjson, every line in turn (invalid ones too), with unique ids.

  pgo-train.py BINARY ROOT WORK [FLOOR]     # WORK: a folder for the input, config and queue

1. `map` over the lines (dry run of the shipped example config), and `map --request`.
2. `serve`: the lines' valid events posted over HTTP in batches, delivered to a stand-in for the
   TikTok Events API (this script, loopback, a free port) until every batch is answered, then
   stopped with SIGTERM, so that it exits cleanly and writes its profile.
3. With FLOOR (the peers benchmark's `serde_json_floor`): the floor over the valid lines.
"""

import http.server
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

# Lines of training input (`PGO_TRAIN_LINES` sets another count: the test suite runs a short one).
LINES = int(os.environ.get("PGO_TRAIN_LINES", "50000"))
BATCH = 500
WRITE_KEY = "pgo-write-key"
TOKEN = "pgo-token"


def sample_lines(root):
    with open(os.path.join(root, "examples/events.ndjson"), encoding="utf-8") as f:
        samples = f.read().splitlines()
    lines = []
    for i in range(LINES):
        line = samples[i % len(samples)]
        try:
            event = json.loads(line)
        except ValueError:
            lines.append(line)  # an invalid line, as users send some
            continue
        if "event_id" in event:
            event["event_id"] = f"{event['event_id']}-{i}"
        lines.append(json.dumps(event, separators=(",", ":")))
    return lines


def run_map(binary, root, work, lines):
    path = os.path.join(work, "events.ndjson")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    config = os.path.join(root, "examples/switchyard.yaml")
    for extra in ([], ["--request"]):
        subprocess.run(
            [binary, "map", "--config", config, *extra, path],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )


class Arrivals(http.server.BaseHTTPRequestHandler):
    """A stand-in for the Events API: counts payloads, answers success."""

    count = 0
    lock = threading.Lock()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with Arrivals.lock:
            Arrivals.count += len(body.get("data", []))
        answer = json.dumps({"code": 0, "message": "OK", "request_id": "pgo", "data": {}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, *args):
        pass


def start_serve(binary, work, endpoint):
    config = os.path.join(work, "serve.yaml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(
            "sources:\n"
            '  - {name: server, kind: webhook, write_key: "${SY_WRITE_KEY}"}\n'
            "destinations:\n"
            "  - name: tiktok\n"
            "    type: tiktok\n"
            "    pixel_id: CJQBODJC77UB4MRTGFRF\n"
            '    access_token: "${SY_TIKTOK_TOKEN}"\n'
            "    domain: https://shop.example.com\n"
            "    sources: [server]\n"
            f"    endpoint: {endpoint}\n"
            "    batch_size: 1000\n"
            "    delivery: {max_requests_per_second: 10000, max_concurrency: 16}\n"
            f'server: {{listen: "127.0.0.1:0", data_dir: "{work}/data", linger_ms: 5}}\n'
        )
    env = dict(os.environ, SY_WRITE_KEY=WRITE_KEY, SY_TIKTOK_TOKEN=TOKEN)
    serve = subprocess.Popen(
        [binary, "serve", "--config", config],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = []
    for line in serve.stderr:
        log.append(line)
        if "listening on " in line:
            rest = line.split("listening on ", 1)[1]
            addr = "".join(itertools.takewhile(lambda c: c.isalnum() or c in ".:[]", rest))
            # Keep reading its log, so that it never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in serve.stderr], daemon=True).start()
            return serve, addr
    raise SystemExit(f"serve did not start (exit {serve.wait()}):\n{''.join(log)}")


def post_all(addr, lines):
    now = int(time.time())
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        event["timestamp"] = now
        events.append(event)
    for start in range(0, len(events), BATCH):
        body = json.dumps(events[start : start + BATCH]).encode()
        request = urllib.request.Request(
            f"http://{addr}/v1/events",
            data=body,
            headers={"Content-Type": "application/json", "X-Webhook-Token": WRITE_KEY},
        )
        try:
            urllib.request.urlopen(request).read()
        except urllib.error.HTTPError as e:
            # A batch with a refused event is answered 4xx: part of the training, not a failure.
            if e.code >= 500:
                raise


def wait_until_quiet(seconds=3.0, limit=120.0):
    """Until no payload arrived for `seconds` (delivery done), at most `limit` seconds."""
    started = time.time()
    last, since = -1, time.time()
    while time.time() - started < limit:
        with Arrivals.lock:
            count = Arrivals.count
        if count != last:
            last, since = count, time.time()
        elif time.time() - since >= seconds:
            return count
        time.sleep(0.2)
    return last


def run_serve(binary, work, lines):
    mock = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Arrivals)
    threading.Thread(target=mock.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{mock.server_address[1]}/open_api/v1.3/event/track/"
    serve, addr = start_serve(binary, work, endpoint)
    try:
        post_all(addr, lines)
        arrived = wait_until_quiet()
    finally:
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=60)
        mock.shutdown()
    if arrived <= 0 or code != 0:
        raise SystemExit(f"serve training failed: {arrived} payloads arrived, exit {code}")
    print(f"serve: {arrived} payloads delivered", file=sys.stderr)


def run_floor(floor, work, lines):
    path = os.path.join(work, "valid.ndjson")
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            try:
                json.loads(line)
            except ValueError:
                continue  # the floor stops at the first line that is not JSON
            f.write(line + "\n")
    subprocess.run([floor, path], stdout=subprocess.DEVNULL, check=True)


def main():
    binary, root, work = sys.argv[1:4]
    lines = sample_lines(root)
    run_map(binary, root, work, lines)
    run_serve(binary, work, lines)
    if len(sys.argv) > 4:
        run_floor(sys.argv[4], work, lines)


if __name__ == "__main__":
    main()

// Switchyard's web console: four views over the admin API (same origin, the admin cookie).
// Every value from the service is put in the page as text (textContent), never as HTML.
"use strict";
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const views = ["destinations", "events", "dead-letters", "preview"];
  const timers = {};

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c !== undefined && c !== null) node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }
  const pre = (value) => el("pre", {}, JSON.stringify(value, null, 2));
  const notice = (text) => { $("#notice").textContent = text; };

  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    if (r.status === 401) { location.reload(); throw new Error("logged out"); }
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      const e = new Error(data.error || method + " " + path + ": " + r.status);
      e.status = r.status; e.data = data;
      throw e;
    }
    return data;
  }

  function confirmAction(text) {
    const dialog = $("#confirm");
    $("#confirm-text").textContent = text;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.returnValue = "";
      dialog.showModal();
      $("#confirm-ok").focus();
    });
  }

  function every(name, ms, fn) {
    clearInterval(timers[name]);
    const run = () => fn().catch((e) => notice(e.message));
    run();
    timers[name] = setInterval(run, ms);
  }

  function show() {
    const name = views.includes(location.hash.slice(1)) ? location.hash.slice(1) : "destinations";
    for (const v of views) $("#" + v).hidden = v !== name;
    for (const a of document.querySelectorAll("nav a")) {
      if (a.getAttribute("href") === "#" + name) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    for (const t of Object.keys(timers)) clearInterval(timers[t]);
    stopLog();
    notice("");
    if (name === "destinations") every("destinations", 5000, loadDestinations);
    if (name === "events") startLog().catch((e) => notice(e.message));
    if (name === "dead-letters") loadDeadLetters().catch((e) => notice(e.message));
    if (name === "preview") loadPreview().catch((e) => notice(e.message));
  }

  // Destinations --------------------------------------------------------------------------------
  const COUNTS = ["received", "sent", "filtered", "skipped", "failed", "retried", "dead_lettered"];

  function chart(perMinute) {
    const ns = "http://www.w3.org/2000/svg";
    const w = 90, h = 24, points = perMinute || [];
    const max = Math.max(1, ...points.map((p) => Math.max(p.sent || 0, p.failed || 0)));
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("width", w);
    svg.setAttribute("height", h);
    svg.setAttribute("role", "img");
    const total = points.reduce((n, p) => n + (p.sent || 0), 0);
    const title = document.createElementNS(ns, "title");
    title.textContent = `${total} sent in ${points.length} minutes`;
    svg.append(title);
    for (const [key, cls] of [["sent", "line-sent"], ["failed", "line-failed"]]) {
      const line = document.createElementNS(ns, "polyline");
      const step = points.length > 1 ? w / (points.length - 1) : w;
      line.setAttribute("points", points.map((p, i) =>
        `${(i * step).toFixed(1)},${(h - 2 - ((p[key] || 0) / max) * (h - 4)).toFixed(1)}`).join(" "));
      line.setAttribute("class", cls);
      svg.append(line);
    }
    return svg;
  }

  async function switchDestination(d) {
    const to = d.status === "active" ? "deactivate" : "activate";
    const what = to === "deactivate"
      ? `Deactivate ${d.name}? New events will not be sent to it until it is activated again.`
      : `Activate ${d.name}? New events will be sent to it again.`;
    if (!(await confirmAction(what))) return;
    await api("POST", `/admin/destinations/${encodeURIComponent(d.name)}/${to}`);
    notice(`${d.name} is now ${to === "deactivate" ? "deactivated" : "active"}.`);
    await loadDestinations();
  }

  async function loadDestinations() {
    const list = await api("GET", "/admin/destinations");
    const rows = list.map((d) => {
      const active = d.status === "active";
      const counts = d.counts || {};
      return el("tr", { "data-destination": d.name },
        el("th", { scope: "row" }, d.name, el("span", { class: "type" }, d.type || "")),
        el("td", {},
          el("span", { class: "status status-" + d.status }, active ? "Active" : "Deactivated"), " ",
          el("button", {
            type: "button", class: "switch", "aria-pressed": active ? "true" : "false",
            "aria-label": (active ? "Deactivate " : "Activate ") + d.name,
            onclick: () => switchDestination(d).catch((e) => notice(e.message)),
          }, active ? "Deactivate" : "Activate")),
        el("td", {}, (d.sources || []).join(", ")),
        el("td", {}, d.mapping || ""),
        COUNTS.map((k) => el("td", { class: "num", "data-count": k }, counts[k] ?? 0)),
        el("td", {}, chart(d.per_minute)));
    });
    $("#destination-table tbody").replaceChildren(...rows);
  }

  // Event log -----------------------------------------------------------------------------------
  // The log shows the journal's latest events, then follows the live tap (`/admin/tap`, NDJSON
  // read with a stream reader); if the stream ends, it polls the journal every 2 seconds.
  const MAX_ROWS = 200;
  const STATUS_WORDS = {
    success: "Success", failure: "Failure", retry: "Retry", filtered: "Filtered", skipped: "Skipped",
    dead_lettered: "Failure (dead-lettered)", pending: "Pending",
  };
  let journeys = new Map();
  let tap = null;
  let drawing = null;

  function filters() {
    const q = new URLSearchParams();
    for (const [k, v] of new FormData($("#event-filters"))) if (v) q.set(k, v);
    return q;
  }

  function statusBadges(j) {
    return (j.destinations || []).map((d) => {
      const retries = (d.attempts || []).filter((a) => a.outcome === "retry").length;
      const more = retries && d.status !== "retry" ? ` after ${retries} ${retries === 1 ? "retry" : "retries"}` : "";
      return el("span", {
        class: "status status-" + d.status, "data-destination": d.destination, "data-status": d.status,
      }, `${d.destination}: ${STATUS_WORDS[d.status] || d.status}${more}`);
    });
  }

  function eventRow(j) {
    return el("tr", { "data-journey": j.id, "data-event-id": j.event_id || "" },
      el("td", {}, el("time", { datetime: j.received_at }, (j.received_at || "").replace("T", " ").slice(0, 19))),
      el("td", {}, j.source),
      el("td", {}, j.event_name),
      el("td", {}, el("button", {
        type: "button", class: "link", "aria-label": `Open the journey of ${j.event_name} ${j.event_id || j.id}`,
        onclick: () => openJourney(j.id).catch((e) => notice(e.message)),
      }, j.event_id || "#" + j.id)),
      el("td", { class: "badges" }, statusBadges(j)));
  }

  // Newest first, at most MAX_ROWS (older journeys are forgotten).
  function draw() {
    drawing = null;
    const ids = [...journeys.keys()].sort((a, b) => b - a);
    for (const id of ids.slice(MAX_ROWS)) journeys.delete(id);
    $("#event-table tbody").replaceChildren(...ids.slice(0, MAX_ROWS).map((id) => eventRow(journeys.get(id))));
  }

  function keep(j) {
    const fresh = !journeys.has(j.id);
    journeys.set(j.id, j);
    return fresh;
  }

  // The journal's latest events; `merge`: keep the states the tap brought meanwhile (newer).
  async function loadEvents(merge) {
    const q = filters();
    q.set("limit", String(MAX_ROWS));
    const list = await api("GET", "/admin/events?" + q);
    const fresh = list.filter((j) => !journeys.has(j.id)).length;
    if (merge === true) list.filter((j) => !journeys.has(j.id)).forEach(keep);
    else { journeys = new Map(); list.forEach(keep); }
    draw();
    if (fresh) $("#events-live").textContent = `${fresh} new event${fresh === 1 ? "" : "s"}; ${list.length} shown.`;
  }

  // One line of the tap: a journey's new state (or how many the stream lost).
  function tapLine(line) {
    if (line.lagged !== undefined) {
      loadEvents().catch((e) => notice(e.message));
      return;
    }
    const want = Object.fromEntries(filters());
    if (want.event_id && line.event_id !== want.event_id) return;
    if (want.status && !(line.destinations || []).some((d) => d.status === want.status)) return;
    if (keep(line)) $("#events-live").textContent = `New: ${line.event_name} (${line.event_id || "#" + line.id}).`;
    // Several lines in a burst are drawn once.
    if (!drawing) drawing = setTimeout(draw, 100);
  }

  async function follow(ctrl) {
    const q = filters();
    q.delete("status"); q.delete("event_id");
    const r = await fetch("/admin/tap?" + q, { credentials: "same-origin", signal: ctrl.signal });
    if (r.status === 401) { location.reload(); return; }
    if (!r.ok || !r.body) throw new Error("the live stream answered " + r.status);
    // Subscribed: what happened before is in the journal, what happens now comes on the tap.
    await loadEvents(true);
    $("#event-log").dataset.live = "stream";
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const text = buffer.slice(0, end);
        buffer = buffer.slice(end + 1);
        if (text.trim()) tapLine(JSON.parse(text));
      }
    }
  }

  function stopLog() {
    if (tap) tap.abort();
    tap = null;
    clearTimeout(drawing);
    drawing = null;
  }

  async function startLog() {
    stopLog();
    journeys = new Map();
    $("#event-log").dataset.live = "off";
    if (!$("#live").checked) return loadEvents();
    const ctrl = new AbortController();
    tap = ctrl;
    try { await follow(ctrl); } catch (e) { if (ctrl.signal.aborted) return; }
    if (ctrl.signal.aborted || tap !== ctrl) return;
    // The stream ended (the service restarts, a proxy cut it): poll instead.
    $("#event-log").dataset.live = "polling";
    $("#events-live").textContent = "The live stream ended; refreshing every 2 seconds.";
    every("events", 2000, loadEvents);
  }

  function attempts(list) {
    if (!list || !list.length) return el("p", {}, "No attempts yet.");
    return el("table", { class: "attempts" },
      el("thead", {}, el("tr", {}, ["When", "Outcome", "Code", "Message"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, list.map((a) => el("tr", { "data-outcome": a.outcome },
        el("td", {}, a.at), el("td", {}, a.outcome), el("td", { class: "code" }, a.code ?? ""), el("td", {}, a.message ?? "")))));
  }

  function matchedRows(rows) {
    return el("ul", { class: "rows" }, rows.map((r) =>
      el("li", { "data-row": `${r.source} → ${r.target}` }, `${r.source} → ${r.target}`, " ", el("code", {}, r.at))));
  }

  function pixelCalls(calls) {
    return el("table", { class: "pixel" },
      el("thead", {}, el("tr", {}, ["Call", "Event", "Params"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, calls.map((c) => el("tr", {},
        el("td", {}, c.method), el("td", {}, c.event ?? ""),
        el("td", {}, c.params === undefined ? "" : pre(c.params))))));
  }

  function destinationPart(d) {
    return el("section", { class: "card", "data-destination": d.destination, "data-status": d.status },
      el("h4", {}, d.destination, " ", el("span", { class: "status status-" + d.status }, STATUS_WORDS[d.status] || d.status)),
      d.reason ? el("p", {}, d.reason) : null,
      d.rows && d.rows.length ? [el("h5", {}, "Matched rows"), matchedRows(d.rows)] : null,
      d.payload ? [el("h5", {}, "Payload"), pre(d.payload)] : null,
      d.pixel && d.pixel.length ? [el("h5", {}, "Pixel calls"), pixelCalls(d.pixel)] : null,
      el("h5", {}, "Attempts (the platform's answers)"), attempts(d.attempts));
  }

  async function openJourney(id) {
    const j = await api("GET", "/admin/events/" + encodeURIComponent(id));
    const plugins = j.plugins && j.plugins.length
      ? el("table", {}, el("thead", {}, el("tr", {}, ["Plugin", "Action", "Message"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, j.plugins.map((p) => el("tr", {}, el("td", {}, p.plugin), el("td", {}, p.action), el("td", {}, p.message ?? "")))))
      : el("p", {}, "No plugin ran on it.");
    $("#journey-title").textContent = `Journey of ${j.event_name} (${j.event_id || "#" + j.id})`;
    $("#journey-body").replaceChildren(
      el("p", {}, `Received ${j.received_at} from ${j.source}.`),
      el("h4", {}, "Source event"), pre(j.event),
      el("h4", {}, "Plugins"), plugins,
      el("h4", {}, "Destinations"), ...(j.destinations || []).map(destinationPart));
    $("#journey").hidden = false;
    $("#journey").dataset.journey = j.id;
    $("#journey").scrollIntoView({ block: "start" });
    $("#journey-title").focus({ preventScroll: true });
  }

  // Unix seconds (or RFC 3339 text) as a readable UTC time.
  const when = (at) => (typeof at === "number" ? new Date(at * 1000).toISOString() : String(at ?? ""))
    .replace("T", " ").slice(0, 19);

  // Dead letters --------------------------------------------------------------------------------
  async function deadLetterAction(kind, body, question) {
    if (question && !(await confirmAction(question))) return;
    const answer = await api("POST", "/admin/dead-letters/" + kind, body);
    notice(kind === "retry" ? `${answer.retried} sent back to delivery.` : `${answer.dropped} discarded.`);
    await loadDeadLetters();
  }

  async function loadDeadLetters() {
    const list = await api("GET", "/admin/dead-letters");
    const act = (kind, body, q) => () => deadLetterAction(kind, body, q).catch((e) => notice(e.message));
    const rows = list.map((d) => {
      const ev = d.event || {};
      return el("tr", { "data-dead-letter": d.id },
        el("td", {}, d.id), el("td", {}, d.destination), el("td", {}, when(d.at)), el("td", {}, d.source),
        el("td", {}, `${ev.event_name || ""} ${ev.event_id || ""}`.trim()),
        el("td", {}, d.reason),
        el("td", {},
          el("button", { type: "button", "aria-label": "Retry " + d.id, onclick: act("retry", { ids: [d.id] }) }, "Retry"), " ",
          el("button", {
            type: "button", class: "danger", "aria-label": "Discard " + d.id,
            onclick: act("drop", { ids: [d.id] }, `Discard dead letter ${d.id}? It cannot be sent afterwards.`),
          }, "Discard")));
    });
    $("#dead-letter-table tbody").replaceChildren(...rows);
    if (!list.length) notice("No dead letters.");
  }

  // Mapping preview -----------------------------------------------------------------------------
  let samples = null;

  async function loadPreview() {
    if (samples) return;
    const r = await fetch("/console/samples.ndjson", { credentials: "same-origin" });
    samples = (await r.text()).split("\n").filter((l) => l.trim());
    $("#preview-sample").append(...samples.map((line, i) => {
      let label = "sample " + (i + 1);
      try { const e = JSON.parse(line); label = `${e.event_name} (${e.event_id})`; } catch (_) { /* shown as is */ }
      return el("option", { value: String(i) }, label);
    }));
    const dests = await api("GET", "/admin/destinations").catch(() => []);
    $("#preview-destination").append(...dests.map((d) => el("option", { value: d.name }, d.name)));
  }

  function pickSample() {
    const i = $("#preview-sample").value;
    if (i === "") return;
    $("#preview-event").value = JSON.stringify(JSON.parse(samples[Number(i)]), null, 2);
  }

  function markLine(line, column) {
    const area = $("#preview-event");
    const lines = area.value.split("\n");
    let start = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
    const end = start + (lines[line - 1] || "").length;
    area.focus();
    area.setSelectionRange(column ? Math.min(start + column - 1, end) : start, end);
  }

  function previewDestination(d) {
    return el("section", { class: "card", "data-destination": d.destination },
      el("h4", {}, d.destination, " ", el("span", { class: "status status-" + d.status }, d.status)),
      d.reason ? el("p", {}, d.reason) : null,
      d.warnings && d.warnings.length ? [el("h5", {}, "Warnings"), pre(d.warnings)] : null,
      d.data && d.data.length ? [el("h5", {}, "Payloads"), el("div", { class: "payloads" }, pre(d.data))] : null,
      d.requests && d.requests.length ? [el("h5", {}, "Requests"), pre(d.requests)] : null,
      d.pixel ? [el("h5", {}, "Pixel calls"), el("div", { class: "pixel" }, pre(d.pixel))] : null);
  }

  async function runPreview(ev) {
    ev.preventDefault();
    const error = $("#preview-error");
    error.textContent = "";
    const body = { event: $("#preview-event").value };
    const source = $("#preview-source").value.trim();
    const destination = $("#preview-destination").value;
    if (source) body.source = source;
    if (destination) body.destination = destination;
    try {
      const answer = await api("POST", "/admin/preview", body);
      const parts = answer.events.map((e) => el("article", { class: "preview-event" },
        el("h3", {}, e.event_name ? `${e.event_name} (${e.event_id})` : "Stopped before routing"),
        e.destinations.map(previewDestination)));
      if (answer.logs.length) parts.push(el("h3", {}, "Plugin log"), pre(answer.logs));
      $("#preview-result").replaceChildren(...parts);
      $("#preview-result").scrollIntoView({ block: "start" });
    } catch (e) {
      $("#preview-result").replaceChildren();
      error.textContent = e.message;
      if (e.data && e.data.line) markLine(e.data.line, e.data.column);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    window.addEventListener("hashchange", show);
    const restart = () => { clearInterval(timers.events); startLog().catch((e) => notice(e.message)); };
    $("#event-filters").addEventListener("submit", (e) => { e.preventDefault(); restart(); });
    $("#live").addEventListener("change", restart);
    $("#journey-close").addEventListener("click", () => { $("#journey").hidden = true; });
    $("#retry-all").addEventListener("click", () =>
      deadLetterAction("retry", {}, "Send every dead letter back to delivery?").catch((e) => notice(e.message)));
    $("#drop-all").addEventListener("click", () =>
      deadLetterAction("drop", {}, "Discard every dead letter? They cannot be sent afterwards.").catch((e) => notice(e.message)));
    $("#preview-sample").addEventListener("change", pickSample);
    $("#preview-form").addEventListener("submit", runPreview);
    show();
  });
})();

/* Switchyard browser script, served by `switchyard serve` at /v1/sdk.js. Install:
   <script async src="https://YOUR-SWITCHYARD/v1/sdk.js?key=PUBLIC_KEY"></script>
   API: switchyard('track', name, properties, profileProperties), switchyard('identify', profile),
   switchyard('consent', {analytics, marketing}). Calls made before it loads are queued by the
   stub `window.switchyard = window.switchyard || function(){(switchyard.q=switchyard.q||[]).push(arguments)}`. */
(function (w, d) {
  "use strict";
  // The tag included twice (a tag manager and the theme, say) runs once: one page view per page.
  if (w.switchyard && w.switchyard._loaded) return;
  var me = d.currentScript, src = new URL(me ? me.src : "", location.href);
  var KEY = src.searchParams.get("key"), ENDPOINT = src.origin + "/v1/collect?key=" + encodeURIComponent(KEY);
  var QUEUE = "_sy_queue", PROFILE = "_sy_profile", loaded = {};

  function store(k, v) { try { if (v === undefined) return JSON.parse(localStorage.getItem(k)); localStorage.setItem(k, JSON.stringify(v)); } catch (e) { return null; } }
  function cookie(name, value, days) {
    if (value === undefined) { var m = d.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)")); return m ? decodeURIComponent(m[1]) : null; }
    d.cookie = name + "=" + encodeURIComponent(value) + "; path=/; max-age=" + days * 86400 + "; SameSite=Lax";
  }
  function uuid() {
    if (w.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) { var r = Math.random() * 16 | 0; return (c == "x" ? r : r & 3 | 8).toString(16); });
  }
  function assign(a, b) { for (var k in b) if (Object.prototype.hasOwnProperty.call(b, k)) a[k] = b[k]; return a; }

  // First-party identifiers: an anonymous id, and TikTok's click id from the landing URL.
  var anon = cookie("_sy_id") || uuid();
  cookie("_sy_id", anon, 365);
  var ttclid = new URLSearchParams(location.search).get("ttclid");
  if (ttclid) cookie("_sy_ttclid", ttclid, 30);
  // Text as the service reads it: a surrogate half left alone (an emoji cut in two) becomes
  // U+FFFD, as JSON with a lone `\ud83d` in it is refused.
  function wellFormed(s) {
    if (s.toWellFormed) return s.toWellFormed();
    return s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]|[\uD800-\uDFFF]/g, function (m) { return m.length == 2 ? m : "\uFFFD"; });
  }
  function body(event) { return JSON.stringify(event, function (k, v) { return typeof v == "string" ? wellFormed(v) : v; }); }

  function profile(extra) {
    var p = assign(assign({}, store(PROFILE) || {}), extra || {});
    p.$user_agent = navigator.userAgent;
    if (navigator.language) p.$locale = navigator.language;
    // The click id from a landing page of this script's, else TikTok's own `ttclid` cookie.
    var ttp = cookie("_ttp"), clid = cookie("_sy_ttclid") || cookie("ttclid");
    if (ttp) p.$ttp = ttp;
    if (clid) p.$ttclid = clid;
    return p;
  }
  function aliases(p) {
    var a = ["urn:anonymous_id:" + anon];
    // A blank or overlong e-mail makes no alias (the service refuses such an alias, and the event
    // with it); the profile still carries what was given.
    var email = p.$email == null ? "" : String(p.$email).trim().toLowerCase();
    if (email && email.length <= 500) a.push("urn:email:" + email);
    return a;
  }

  // The pixel: TikTok's stub (calls queue until the loader runs, per pixel in `ttq._i[id]`),
  // loaded once per pixel id. Each destination's calls go to its own pixel:
  // `ttq.instance(id).track(...)`, never to whichever pixel loaded first.
  var METHODS = ["page", "track", "identify", "instances", "debug", "on", "off", "once", "ready", "alias", "group", "enableCookie", "disableCookie", "holdConsent", "revokeConsent", "grantConsent"];
  function defer(o, m) { o[m] = o[m] || function () { o.push([m].concat([].slice.call(arguments))); }; }
  function pixel(id, loader) {
    var q = w.ttq = w.ttq || [];
    if (!q._sy) {
      q._sy = 1;
      q.methods = q.methods || METHODS;
      METHODS.forEach(function (m) { defer(q, m); });
      q._i = q._i || {};
      q.instance = q.instance || function (pid) { var i = q._i[pid] || []; METHODS.forEach(function (m) { defer(i, m); }); return i; };
    }
    if (loaded[id]) return q.instance(id);
    loaded[id] = 1;
    if (q._i[id]) return q.instance(id); // the page's own tag loads it already
    q._i[id] = []; q._i[id]._u = loader;
    (q._t = q._t || {})[id] = +new Date; (q._o = q._o || {})[id] = {};
    var s = d.createElement("script");
    s.async = true;
    s.src = loader + (loader.indexOf("?") < 0 ? "?" : "&") + "sdkid=" + encodeURIComponent(id) + "&lib=ttq";
    d.head.appendChild(s);
    return q.instance(id);
  }
  var identified = {};
  function run(answer) {
    (answer.destinations || []).forEach(function (dest) {
      var t = pixel(dest.pixel_id, dest.loader);
      dest.calls.forEach(function (c) {
        if (c[0] == "identify") { // once per pixel and identity
          var who = JSON.stringify(c[1]);
          if (identified[dest.pixel_id] == who) return;
          identified[dest.pixel_id] = who;
        }
        t[c[0]].apply(t, c.slice(1));
      });
    });
  }

  // Every event goes through a queue in localStorage (at most MAX, the oldest dropped first): sent
  // one at a time, oldest first, and taken off once the service answered. Offline, or with the
  // service away (a network error, 5xx, 429), events wait and go, in order, with their own
  // `eventID` and `timestamp`, when the browser is back online, after RETRY_MS, or on the next
  // page. The service de-duplicates by `eventID`, so a copy sent twice is kept once.
  // Without localStorage (blocked, full), the queue lives in memory, for this page only.
  var MAX = 100, RETRY_MS = 5000, sending = false, retry = null, memory = [];
  function queued() { var q = store(QUEUE); return Array.isArray(q) ? q : memory; }
  function keep(q) { memory = q; store(QUEUE, q); }
  function later(event) { var q = queued(); q.push(event); keep(q.slice(-MAX)); }
  function taken(event) { keep(queued().filter(function (e) { return e.eventID != event.eventID; })); }
  // The device's clock when it sends, so that the service can correct event times by how far
  // that clock is off (a fast clock would put events in the future, which are refused).
  function sentNow() { return ENDPOINT + "&sent_at=" + Math.floor(Date.now() / 1000); }
  function send(event) {
    // `keepalive`: the request outlives the page (a link clicked right after a track call).
    var timeout = w.AbortSignal && AbortSignal.timeout ? AbortSignal.timeout(15000) : undefined;
    return fetch(sentNow(), { method: "POST", body: body(event), keepalive: true, signal: timeout, headers: { "content-type": "text/plain" } })
      .then(function (r) {
        if (r.status >= 500 || r.status == 429) throw new Error("retry later");
        taken(event); // refused for good (4xx) is taken off too: sending it again cannot help
        return r.json().then(function (answer) {
          try { run(answer); } catch (e) { if (w.console) console.warn("switchyard: pixel call failed", e); }
        }, function () {});
      });
  }
  function flush() {
    clearTimeout(retry);
    if (sending || !navigator.onLine) return;
    var next = queued()[0];
    if (!next) return;
    sending = true;
    send(next).then(function () { sending = false; flush(); },
      function () { sending = false; retry = setTimeout(flush, RETRY_MS); });
  }
  // The page goes away with events not yet answered (one in flight, others behind it): each goes
  // as a beacon, which outlives the page; they stay queued, and a copy the next page sends again
  // is answered as a duplicate.
  w.addEventListener("pagehide", function () {
    if (!navigator.onLine || !navigator.sendBeacon) return;
    queued().forEach(function (e) { navigator.sendBeacon(sentNow(), body(e)); });
  });

  function track(name, properties, profileProperties) {
    var p = profile(profileProperties);
    var event = {
      eventName: name, eventID: uuid(), timestamp: Math.floor(Date.now() / 1000),
      properties: assign({ $url: location.href, $sales_channel_type: "web" }, properties || {}),
      profileProperties: p, aliases: aliases(p)
    };
    // Behind the events still queued: the pixel fires events in the order they happened.
    later(event);
    flush();
  }
  var api = {
    track: track,
    identify: function (p) { store(PROFILE, assign(store(PROFILE) || {}, p || {})); },
    consent: function (c) {
      var consent = {};
      // `true` or "granted" grants (as Google's consent mode writes it); anything else denies.
      for (var k in c) consent[k] = c[k] === true || String(c[k]).toLowerCase() == "granted" ? "granted" : "denied";
      api.identify({ $consent: assign((store(PROFILE) || {}).$consent || {}, consent) });
    }
  };

  var pending = (w.switchyard && w.switchyard.q) || [];
  w.switchyard = function (method) {
    if (!api[method]) throw new Error("switchyard: unknown method " + method);
    api[method].apply(null, [].slice.call(arguments, 1));
  };
  w.switchyard._loaded = true;
  // Choices made before the script loaded apply to the page view; queued events follow it.
  var early = [].slice.call(pending).filter(function (a) { return a[0] != "track"; });
  var tracks = [].slice.call(pending).filter(function (a) { return a[0] == "track"; });
  early.forEach(function (args) { w.switchyard.apply(null, args); });
  w.addEventListener("online", flush);
  flush();
  track("$page_load", {
    referrer: d.referrer, timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
    viewport: w.innerWidth + "x" + w.innerHeight
  });
  tracks.forEach(function (args) { w.switchyard.apply(null, args); });
})(window, document);

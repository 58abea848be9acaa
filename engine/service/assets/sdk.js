/* Switchyard browser script, served by `switchyard serve` at /v1/sdk.js. Install:
   <script async src="https://YOUR-SWITCHYARD/v1/sdk.js?key=PUBLIC_KEY"></script>
   API: switchyard('track', name, properties, profileProperties), switchyard('identify', profile),
   switchyard('consent', {analytics, marketing}). Calls made before it loads are queued by the
   stub `window.switchyard = window.switchyard || function(){(switchyard.q=switchyard.q||[]).push(arguments)}`. */
(function (w, d) {
  "use strict";
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

  function profile(extra) {
    var p = assign(assign({}, store(PROFILE) || {}), extra || {});
    p.$user_agent = navigator.userAgent;
    if (navigator.language) p.$locale = navigator.language;
    var ttp = cookie("_ttp"), clid = cookie("_sy_ttclid");
    if (ttp) p.$ttp = ttp;
    if (clid) p.$ttclid = clid;
    return p;
  }
  function aliases(p) {
    var a = ["urn:anonymous_id:" + anon];
    if (p.$email) a.push("urn:email:" + String(p.$email).trim().toLowerCase());
    return a;
  }

  // The pixel: TikTok's stub (calls queue until the loader runs), loaded once per pixel id.
  function pixel(id, loader) {
    var q = w.ttq = w.ttq || [];
    if (!q._sy) {
      q._sy = 1;
      ["page", "track", "identify", "instances", "debug", "on", "off", "once", "ready", "alias", "group", "enableCookie", "disableCookie", "holdConsent", "revokeConsent", "grantConsent"].forEach(function (m) {
        q[m] = q[m] || function () { q.push([m].concat([].slice.call(arguments))); };
      });
    }
    if (loaded[id]) return;
    loaded[id] = 1;
    var s = d.createElement("script");
    s.async = true;
    s.src = loader + (loader.indexOf("?") < 0 ? "?" : "&") + "sdkid=" + encodeURIComponent(id) + "&lib=ttq";
    d.head.appendChild(s);
  }
  var identified = {};
  function run(answer) {
    (answer.destinations || []).forEach(function (dest) {
      pixel(dest.pixel_id, dest.loader);
      dest.calls.forEach(function (c) {
        if (c[0] == "identify") { // once per pixel and identity
          var who = JSON.stringify(c[1]);
          if (identified[dest.pixel_id] == who) return;
          identified[dest.pixel_id] = who;
        }
        var t = w.ttq; t[c[0]].apply(t, c.slice(1));
      });
    });
  }

  function send(event) {
    return fetch(ENDPOINT, { method: "POST", body: JSON.stringify(event), keepalive: true, headers: { "content-type": "text/plain" } })
      .then(function (r) {
        if (r.status >= 500 || r.status == 429) throw new Error("retry later");
        return r.json();
      })
      .then(run);
  }
  // Events that could not be sent (offline, server away) wait in localStorage, in order.
  function later(event) { var q = store(QUEUE) || []; q.push(event); store(QUEUE, q.slice(-100)); }
  function flush() {
    var q = store(QUEUE) || [];
    store(QUEUE, []);
    q.forEach(function (e) { send(e).catch(function () { later(e); }); });
  }

  function track(name, properties, profileProperties) {
    var p = profile(profileProperties);
    var event = {
      eventName: name, eventID: uuid(), timestamp: Math.floor(Date.now() / 1000),
      properties: assign({ $url: location.href, $sales_channel_type: "web" }, properties || {}),
      profileProperties: p, aliases: aliases(p)
    };
    if (!navigator.onLine) return later(event);
    // One at a time, in order: the pixel fires events in the order they happened.
    chain = chain.then(function () { return send(event); }).catch(function () { later(event); });
  }
  var chain = Promise.resolve();
  var api = {
    track: track,
    identify: function (p) { store(PROFILE, assign(store(PROFILE) || {}, p || {})); },
    consent: function (c) {
      var consent = {};
      for (var k in c) consent[k] = c[k] ? "granted" : "denied";
      api.identify({ $consent: assign((store(PROFILE) || {}).$consent || {}, consent) });
    }
  };

  var pending = (w.switchyard && w.switchyard.q) || [];
  w.switchyard = function (method) {
    if (!api[method]) throw new Error("switchyard: unknown method " + method);
    api[method].apply(null, [].slice.call(arguments, 1));
  };
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

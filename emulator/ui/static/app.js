// aep-emulator dashboard: live updates from the server's event stream, and forms sent without a reload.
// Every piece of HTML inserted here is the server's own page, rendered with escaping; nothing a request
// carried is ever turned into markup on this side.
(function () {
  "use strict";
  var UI = "/_emulator/ui";
  var live = document.getElementById("live");
  var status = document.getElementById("status");
  var toggle = document.getElementById("live-updates");
  var topics = (document.body.getAttribute("data-topics") || "").split(" ");
  var inflight = false, again = false, source = null;

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", !!isError);
  }

  function setClock(fresh) {
    var clock = document.getElementById("emulator-clock");
    if (!clock || !fresh) return;
    ["data-now", "data-mode", "data-speed", "datetime"].forEach(function (name) {
      var value = fresh.getAttribute(name);
      if (value !== null) clock.setAttribute(name, value);
    });
    clock.textContent = fresh.textContent;
  }

  function setClockMs(ms) {
    var clock = document.getElementById("emulator-clock");
    if (!clock || typeof ms !== "number") return;
    var text = new Date(ms).toISOString();
    clock.setAttribute("data-now", String(ms));
    clock.setAttribute("datetime", text);
    clock.textContent = text;
  }

  function swap(doc) {
    var fresh = doc.getElementById("live");
    if (!fresh) return;
    var open = Array.prototype.map.call(live.querySelectorAll("details[open][id]"), function (d) { return d.id; });
    var active = document.activeElement;
    var focusId = active && live.contains(active) ? active.id : "";
    var nodes = Array.prototype.map.call(fresh.childNodes, function (n) { return document.importNode(n, true); });
    live.replaceChildren.apply(live, nodes);
    open.forEach(function (id) { var d = document.getElementById(id); if (d) d.open = true; });
    if (focusId) { var f = document.getElementById(focusId); if (f) f.focus(); }
    setClock(doc.getElementById("emulator-clock"));
  }

  function refresh() {
    if (inflight) { again = true; return; }
    inflight = true;
    fetch(location.href, { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null) swap(new DOMParser().parseFromString(html, "text/html"));
      })
      .catch(function () {})
      .then(function () {
        inflight = false;
        if (again) { again = false; refresh(); }
      });
  }

  function connect() {
    if (source || !window.EventSource) return;
    source = new EventSource(UI + "/events");
    source.addEventListener("change", function (event) {
      var data = JSON.parse(event.data);
      setClockMs(data.now);
      var wanted = data.topics.some(function (t) { return topics.indexOf(t) >= 0; });
      if (wanted && toggle.checked) refresh();
    });
    source.addEventListener("open", function () { document.body.setAttribute("data-live", "on"); });
    source.addEventListener("error", function () { document.body.setAttribute("data-live", "retrying"); });
  }

  toggle.addEventListener("change", function () {
    if (toggle.checked) { connect(); refresh(); say("Live updates on."); }
    else { if (source) { source.close(); source = null; } document.body.setAttribute("data-live", "off"); say("Live updates paused."); }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-enhance")) return;
    event.preventDefault();
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) return;
    var body = new URLSearchParams(new FormData(form));
    fetch(form.action, { method: "POST", body: body, headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json().then(function (json) { return { ok: r.ok, json: json }; }); })
      .then(function (answer) {
        if (answer.ok) say(answer.json.message || "Done.");
        else say(answer.json.detail || answer.json.title || "The emulator refused that.", true);
        refresh();
      })
      .catch(function (error) { say("Could not reach the emulator: " + error, true); });
  });

  connect();
})();

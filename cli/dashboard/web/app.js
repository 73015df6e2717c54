// The Serin dashboard's page: the canary list and a page per canary, kept current by the
// server-sent events of /api/stream. Plain JavaScript, no build step; uPlot draws the chart.
"use strict";

(function () {
  const token = document.querySelector('meta[name="serin-token"]').content;
  const main = document.getElementById("main");
  const live = document.getElementById("live");

  /** The canaries by "namespace/name", as the stream last told. */
  const canaries = new Map();
  /** Weights seen on the stream per canary: [{t: seconds, w: weight}]. */
  const liveWeights = new Map();
  let scope = "";
  let view = null;  // {kind: "list"} or {kind: "canary", ns, name, ...}

  // ---- helpers -------------------------------------------------------------------------------

  /** An element with attributes and children (strings become text: nothing is parsed as HTML). */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  async function api(path, options) {
    const init = Object.assign({ credentials: "same-origin" }, options || {});
    init.headers = Object.assign({ "X-Serin-Token": token }, init.headers || {});
    const response = await fetch(path, init);
    let body = null;
    try { body = await response.json(); } catch (e) { body = { error: response.statusText }; }
    return { status: response.status, ok: response.ok, body };
  }

  function age(timestamp) {
    if (!timestamp) return "";
    const s = Math.max(0, (Date.now() - Date.parse(timestamp)) / 1000);
    if (s < 120) return Math.floor(s) + "s";
    if (s < 7200) return Math.floor(s / 60) + "m";
    if (s < 172800) return Math.floor(s / 3600) + "h";
    return Math.floor(s / 86400) + "d";
  }

  function stepText(c) {
    return c.step && c.step.total > 0 ? c.step.index + "/" + c.step.total : "";
  }

  function phaseCell(phase) {
    return el("span", { class: "phase phase-" + (phase || "none") }, phase || "—");
  }

  function key(ns, name) { return ns + "/" + name; }

  function fmtTime(t) {
    if (!t) return "";
    const d = new Date(t);
    return isNaN(d) ? t : d.toLocaleTimeString();
  }

  // ---- the list ------------------------------------------------------------------------------

  function renderList() {
    const rows = [...canaries.values()].sort((a, b) =>
      key(a.namespace, a.name).localeCompare(key(b.namespace, b.name)));
    const table = el("table", { id: "canaries" },
      el("thead", {}, el("tr", {}, ["Namespace", "Name", "Phase", "Weight", "Step", "Failed checks",
        "Age"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.map((c) => el("tr", {
        class: "row", "data-canary": key(c.namespace, c.name),
        onclick: () => { location.hash = "#/c/" + c.namespace + "/" + c.name; },
      },
        el("td", {}, c.namespace),
        el("td", {}, el("a", { href: "#/c/" + c.namespace + "/" + c.name }, c.name)),
        el("td", { class: "phase-cell" }, phaseCell(c.phase), c.paused ? el("span", { class: "badge" }, "paused") : null),
        el("td", { class: "weight" }, String(c.weight)),
        el("td", { class: "step" }, stepText(c)),
        el("td", { class: "failed" }, String(c.failedChecks)),
        el("td", { class: "age", title: c.created }, age(c.created))))));
    main.replaceChildren(
      el("h1", {}, "Canaries"),
      rows.length ? table : el("p", { class: "muted", id: "empty" }, "No canaries " +
        (scope ? "in namespace " + scope : "in any namespace") + " yet."));
  }

  // ---- a canary's page -----------------------------------------------------------------------

  function currentRelease(history) {
    const releases = history && history.spec && Array.isArray(history.spec.releases) ? history.spec.releases : [];
    return releases.length ? releases[releases.length - 1] : null;
  }

  /** The weight series: the current release's steps, then what the stream showed since. */
  function weightSeries(v) {
    const points = [];
    const release = currentRelease(v.detail && v.detail.history);
    if (release && Array.isArray(release.steps)) {
      for (const s of release.steps) {
        const t = Date.parse(s.time) / 1000;
        if (!isNaN(t) && typeof s.weight === "number") points.push({ t, w: s.weight });
      }
    }
    const since = points.length ? points[points.length - 1].t : 0;
    for (const p of liveWeights.get(key(v.ns, v.name)) || []) {
      if (p.t > since) points.push(p);
    }
    points.sort((a, b) => a.t - b.t);
    return [points.map((p) => p.t), points.map((p) => p.w)];
  }

  function drawChart(v) {
    const box = document.getElementById("chart");
    if (!box || typeof uPlot === "undefined") return;
    const data = weightSeries(v);
    if (v.plot) {
      v.plot.setData(data);
      return;
    }
    const width = Math.max(320, box.clientWidth - 16);
    v.plot = new uPlot({
      width, height: 220,
      scales: { y: { range: [0, 100] } },
      series: [{}, { label: "canary weight %", stroke: "#2563eb", width: 2, fill: "rgba(37,99,235,0.08)",
        paths: uPlot.paths.stepped({ align: 1 }), points: { show: true } }],
      axes: [{}, { label: "weight %" }],
    }, data, box);
  }

  function checksTable(release) {
    const steps = release && Array.isArray(release.steps) ? release.steps : [];
    if (!steps.length) return el("p", { class: "muted" }, "No analysis steps recorded yet.");
    return el("table", { class: "checks", id: "steps" },
      el("thead", {}, el("tr", {}, ["Time", "Phase", "Weight", "Metric checks (value vs threshold)", "Judge",
        "Gates and webhooks"].map((h) => el("th", {}, h)))),
      el("tbody", {}, steps.slice().reverse().map((s) => el("tr", {},
        el("td", {}, fmtTime(s.time)),
        el("td", {}, phaseCell(s.phase)),
        el("td", {}, String(s.weight ?? "")),
        el("td", {}, (s.checks || []).map((c) => el("div", {},
          el("b", {}, c.name), ": ",
          c.value === undefined || c.value === null ? el("span", { class: "muted" }, "no value") : String(c.value),
          el("span", { class: "muted" }, " (",
            c.min !== undefined && c.min !== null ? "min " + c.min : "",
            c.min !== undefined && c.min !== null && c.max !== undefined && c.max !== null ? ", " : "",
            c.max !== undefined && c.max !== null ? "max " + c.max : "", ") "),
          el("span", { class: "verdict-" + c.verdict }, c.verdict || ""),
          c.message ? el("span", { class: "muted" }, " " + c.message) : null))),
        el("td", {}, s.judge ? [
          el("div", {}, el("span", { class: "verdict-" + s.judge.result }, s.judge.result || ""),
            s.judge.score !== undefined ? " score " + s.judge.score : ""),
          (s.judge.metrics || []).map((m) => el("div", { class: "muted" },
            m.name + ": " + (m.classification || "") + (m.ratio !== undefined ? " ×" + m.ratio : ""))),
        ] : ""),
        el("td", {}, (s.gates || []).map((g) => el("div", {},
          el("span", { class: g.ok ? "ok" : "bad" }, g.ok ? "✓ " : "✗ "),
          g.name, el("span", { class: "muted" }, " " + (g.type || "")),
          g.error ? el("span", { class: "bad" }, " " + g.error) : null)))))));
  }

  function timeline(history) {
    const releases = history && history.spec && Array.isArray(history.spec.releases) ? history.spec.releases : [];
    if (!releases.length) return el("p", { class: "muted" }, "No release recorded yet.");
    return el("ul", { class: "timeline", id: "timeline" }, releases.slice().reverse().map((r) => el("li", {},
      el("span", { class: "phase phase-" + (r.outcome === "Running" ? "Progressing" : r.outcome) }, r.outcome || ""),
      " ", el("code", {}, r.image || r.revision || ""),
      el("span", { class: "muted" }, " " + fmtTime(r.start) + (r.end ? " – " + fmtTime(r.end) : " – now") +
        " · " + (r.strategy || "") + " · " + (r.steps ? r.steps.length : 0) + " steps"),
      r.reason ? el("div", { class: "muted" }, r.reason) : null,
      (r.requests || []).map((q) => el("div", {}, "↳ ", q.action, " by ", q.requestedBy || "?", ": ",
        el("span", { class: q.result === "Done" ? "ok" : "bad" }, q.result || "pending"))))));
  }

  function requestsList(canary) {
    const list = canary && canary.status && Array.isArray(canary.status.requests) ? canary.status.requests : [];
    if (!list.length) return el("p", { class: "muted" }, "No requests handled yet.");
    return el("table", { id: "requests" },
      el("thead", {}, el("tr", {}, ["Time", "Request", "Action", "By", "Result", "Message"].map((h) => el("th", {}, h)))),
      el("tbody", {}, list.slice().reverse().map((q) => el("tr", {},
        el("td", {}, fmtTime(q.time)), el("td", {}, q.name || ""),
        el("td", {}, (q.action || "") + (q.full ? " --full" : "")), el("td", {}, q.requestedBy || ""),
        el("td", { class: q.result === "Done" ? "ok" : "bad" }, q.result || ""), el("td", {}, q.message || "")))));
  }

  function eventsTable(events) {
    if (!events || !events.length) return el("p", { class: "muted" }, "No recent events.");
    return el("table", { id: "events" },
      el("thead", {}, el("tr", {}, ["Time", "Type", "Reason", "Message"].map((h) => el("th", {}, h)))),
      el("tbody", {}, events.slice().reverse().map((e) => el("tr", {},
        el("td", {}, fmtTime(e.time)), el("td", { class: e.type === "Warning" ? "bad" : "" }, e.type),
        el("td", {}, e.reason), el("td", {}, e.message + (e.count > 1 ? " (×" + e.count + ")" : ""))))));
  }

  async function sendRequest(v, action, full) {
    const message = document.getElementById("message");
    if ((action === "abort" || full) &&
        !window.confirm((full ? "Promote " + v.name + " now, skipping confirm-promotion gates?" :
          "Abort the release of " + v.name + " and roll back?"))) return;
    const reason = document.getElementById("reason").value;
    message.className = "";
    message.textContent = "Sending " + action + (full ? " --full" : "") + "…";
    const r = await api("/api/canaries/" + v.ns + "/" + v.name + "/requests", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ action, full: !!full, reason }),
    });
    message.className = r.ok ? "done" : "error";
    message.textContent = r.ok ? r.body.message + ": Serin acts on it at its next reconcile." :
      (r.body && r.body.error) || ("failed: HTTP " + r.status);
  }

  function renderCanary(v) {
    const d = v.detail;
    const s = canaries.get(key(v.ns, v.name)) || (d && d.summary);
    if (!s) {
      main.replaceChildren(el("p", { class: "muted" }, "Loading " + v.ns + "/" + v.name + "…"));
      return;
    }
    v.plot = null;
    const release = currentRelease(d && d.history);
    const buttons = [["promote", false, "promote"], ["promote", true, "promote --full"], ["abort", false, "abort"],
      ["pause", false, "pause"], ["resume", false, "resume"], ["retry", false, "retry"]];
    main.replaceChildren(
      el("p", {}, el("a", { href: "#/" }, "← all canaries")),
      el("h1", {}, s.namespace + " / " + s.name, s.paused ? el("span", { class: "badge" }, "paused") : null),
      el("div", { class: "facts", id: "facts" },
        el("div", {}, el("span", {}, "phase"), el("b", { id: "phase", class: "phase phase-" + s.phase }, s.phase || "—")),
        el("div", {}, el("span", {}, "weight"), el("b", { id: "weight" }, String(s.weight) + "%")),
        el("div", {}, el("span", {}, "step"), el("b", { id: "step" }, stepText(s) || "—")),
        el("div", {}, el("span", {}, "failed checks"), el("b", {}, String(s.failedChecks))),
        el("div", {}, el("span", {}, "target"), el("b", {}, s.target || "")),
        el("div", {}, el("span", {}, "last change"), el("b", {}, age(s.lastTransitionTime) || "—"))),
      el("div", { class: "actions" },
        buttons.map(([action, full, label]) => el("button", {
          "data-action": label, class: action === "abort" ? "danger" : "",
          onclick: () => sendRequest(v, action, full),
        }, label)),
        el("input", { type: "text", id: "reason", placeholder: "reason (optional)", maxlength: 512 })),
      el("div", { id: "message" }),
      el("h2", {}, "Traffic weight"),
      el("div", { class: "chart", id: "chart" }),
      el("h2", {}, "Analysis steps", release ? " of the current release" : ""),
      checksTable(release),
      el("h2", {}, "Releases"),
      timeline(d && d.history),
      el("h2", {}, "Requests"),
      requestsList(d && d.canary),
      el("h2", {}, "Recent events"),
      eventsTable(d && d.events),
      d && d.errors && d.errors.length ? el("p", { class: "bad", id: "errors" }, d.errors.join("; ")) : "");
    drawChart(v);
  }

  function updateFacts(v) {
    const s = canaries.get(key(v.ns, v.name));
    if (!s) return;
    const phase = document.getElementById("phase");
    if (phase) { phase.textContent = s.phase || "—"; phase.className = "phase phase-" + s.phase; }
    const weight = document.getElementById("weight");
    if (weight) weight.textContent = s.weight + "%";
    const step = document.getElementById("step");
    if (step) step.textContent = stepText(s) || "—";
    drawChart(v);
  }

  async function loadCanary(v) {
    const r = await api("/api/canaries/" + v.ns + "/" + v.name);
    if (view !== v) return;
    if (!r.ok) {
      main.replaceChildren(el("p", {}, el("a", { href: "#/" }, "← all canaries")),
        el("p", { class: "bad" }, (r.body && r.body.error) || "HTTP " + r.status));
      return;
    }
    const message = document.getElementById("message");
    const kept = message ? [message.className, message.textContent] : null;
    v.detail = r.body;
    renderCanary(v);
    if (kept) {
      const m = document.getElementById("message");
      m.className = kept[0];
      m.textContent = kept[1];
    }
  }

  /** Reloads the canary's page (history, events) at most once a second while it changes. */
  function scheduleReload(v) {
    if (v.reload) return;
    v.reload = setTimeout(() => { v.reload = null; if (view === v) loadCanary(v); }, 1000);
  }

  // ---- routing and the live stream -----------------------------------------------------------

  function route() {
    const m = location.hash.match(/^#\/c\/([a-z0-9.-]+)\/([a-z0-9.-]+)$/);
    if (view && view.reload) clearTimeout(view.reload);
    if (m) {
      view = { kind: "canary", ns: m[1], name: m[2] };
      renderCanary(view);
      loadCanary(view);
    } else {
      view = { kind: "list" };
      renderList();
    }
  }

  function noteWeight(c) {
    const k = key(c.namespace, c.name);
    const list = liveWeights.get(k) || [];
    const last = list[list.length - 1];
    if (!last || last.w !== c.weight) list.push({ t: Date.now() / 1000, w: c.weight });
    if (list.length > 500) list.shift();
    liveWeights.set(k, list);
  }

  function onChange(c) {
    if (!view) return;
    if (view.kind === "list") renderList();
    else if (c && key(view.ns, view.name) === key(c.namespace, c.name)) {
      updateFacts(view);
      scheduleReload(view);
    }
  }

  function connect() {
    const stream = new EventSource("/api/stream");
    stream.addEventListener("open", () => { live.textContent = "live"; live.className = "live"; });
    stream.addEventListener("error", () => { live.textContent = "reconnecting"; live.className = "live off"; });
    stream.addEventListener("snapshot", (e) => {
      const data = JSON.parse(e.data);
      scope = data.namespace || "";
      document.getElementById("scope").textContent = scope ? "namespace " + scope : "all namespaces";
      canaries.clear();
      for (const c of data.canaries) { canaries.set(key(c.namespace, c.name), c); noteWeight(c); }
      live.textContent = "live"; live.className = "live";
      if (view && view.kind === "list") renderList();
      else if (view) updateFacts(view);
    });
    stream.addEventListener("canary", (e) => {
      const data = JSON.parse(e.data);
      if (data.op === "delete") {
        canaries.delete(key(data.namespace, data.name));
        onChange({ namespace: data.namespace, name: data.name });
        return;
      }
      const c = data.canary;
      canaries.set(key(c.namespace, c.name), c);
      noteWeight(c);
      onChange(c);
    });
  }

  window.addEventListener("hashchange", route);
  setInterval(() => { if (view && view.kind === "list") renderList(); }, 30000);  // ages
  connect();
  route();
})();

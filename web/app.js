"use strict";
// Outrigger dashboard shell. Reads /api/v1; API data only ever reaches the page as text nodes.
(() => {
  const API = "/api/v1", PERIOD_MS = 5000, TIMEOUT_MS = 10000;
  const STATUSES = ["draft", "applying", "ready", "failed", "destroying", "destroyed"];
  const $ = (id) => document.getElementById(id);
  const plural = (n, w) => `${n} ${w}${n === 1 ? "" : "s"}`;

  class ApiError extends Error {
    constructor(msg, network = false) { super(msg); this.network = network; }
  }

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v != null) e.setAttribute(k, v);
    for (const k of kids) if (k != null) e.append(k instanceof Node ? k : String(k));
    return e;
  }

  async function getJSON(path) {
    const url = API + path, ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    let res, body = null;
    try {
      res = await fetch(url, { headers: { Accept: "application/json" }, signal: ctl.signal, cache: "no-store" });
      body = await res.json().catch(() => null);
    } catch (e) {
      throw new ApiError(e.name === "AbortError" ? `no answer from ${url} within ${TIMEOUT_MS / 1000} s.`
        : `network error on ${url}.`, true);
    } finally { clearTimeout(t); }
    const err = body && body.error;
    if (!res.ok) {
      throw new ApiError(err && err.message ? err.message + (err.field ? ` (field: ${err.field})` : "")
        : `${url} answered HTTP ${res.status}.`);
    }
    if (!body || typeof body !== "object") throw new ApiError(`${url} did not return a JSON object.`);
    return body;
  }

  // The alert region is rewritten only when its text changes, so screen readers are not spammed.
  function showProblems(msgs) {
    const box = $("alerts"), text = msgs.join("\n");
    if (box.dataset.text === text) return;
    box.dataset.text = text;
    box.replaceChildren(...msgs.map((t) => el("p", null, t)));
  }

  function toDate(v) { // ISO 8601 string, or seconds / milliseconds since the epoch
    if (v == null || v === "") return null;
    const d = new Date(typeof v === "number" && v < 1e12 ? v * 1000 : v);
    return isNaN(d) ? null : d;
  }
  const fmt = new Intl.DateTimeFormat(undefined,
    { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  function timeEl(v) {
    const d = toDate(v);
    if (!d) return el("span", { class: "muted" }, v ? v : "—");
    return el("time", { datetime: d.toISOString(), title: d.toISOString() }, fmt.format(d));
  }

  function safeUrl(u) { // links only to http(s), never javascript: and friends
    try {
      const url = new URL(String(u), location.href);
      return /^https?:$/.test(url.protocol) ? url.href : null;
    } catch { return null; }
  }

  const list = (body, key) => {
    if (!Array.isArray(body[key])) throw new ApiError(`the answer has no "${key}" list.`);
    return body[key];
  };
  const pill = (s, cls) => el("span", { class: "pill pill-" + cls }, s);

  // ---- environments (all pages)
  async function loadEnvironments() {
    const all = [], seen = new Set();
    let cursor = null;
    do {
      const body = await getJSON("/environments?limit=100" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      all.push(...list(body, "environments"));
      seen.add(cursor);
      cursor = body.next_cursor;
    } while (cursor && !seen.has(cursor));
    return all;
  }

  let lastEnvs = null;
  function renderEnvironments(envs) {
    const key = JSON.stringify(envs);
    if (key === lastEnvs) return; // unchanged: keep focus and scroll position
    lastEnvs = key;
    envs.sort((a, b) => (toDate(b.created_at) || 0) - (toDate(a.created_at) || 0) ||
      String(a.name).localeCompare(String(b.name)));
    $("envs-count").textContent = `(${envs.length})`;
    $("envs-body").replaceChildren(...envs.map((e) => {
      const out = e.outputs || {}, href = out.app_url && safeUrl(out.app_url);
      const app = href ? el("a", { href, rel: "noopener noreferrer", target: "_blank" }, out.app_url)
        : out.app_url || out.ingress_ip ? el("span", null, out.app_url || out.ingress_ip)
        : el("span", { class: "muted" }, "—");
      return el("tr", null,
        el("th", { scope: "row" }, e.name ?? "?"),
        el("td", null, pill(e.status || "unknown", STATUSES.includes(e.status) ? e.status : "unknown")),
        el("td", null, e.provider ?? ""),
        el("td", null, e.blueprint ?? ""),
        el("td", null, app),
        el("td", { class: "wrap-ok" }, e.created_by ?? ""),
        el("td", null, timeEl(e.updated_at || e.created_at)));
    }));
    $("envs-table").hidden = envs.length === 0;
    $("envs-empty").hidden = envs.length !== 0;
  }

  // Empty state: a create call that names a blueprint this server can load.
  function renderCurl(bps) {
    const bp = (bps || []).find((b) => b.loadable);
    const body = { name: "demo", provider: "sandbox", blueprint: bp ? bp.name : "mesh-expansion", params: {} };
    $("envs-curl").textContent = "curl -X POST -H 'Content-Type: application/json' \\\n" +
      `  -d '${JSON.stringify(body)}' \\\n  ${location.origin}${API}/environments`;
  }

  // ---- blueprints
  let lastBps = null;
  function renderBlueprints(bps) {
    const key = JSON.stringify(bps);
    if (key === lastBps) return;
    lastBps = key;
    renderCurl(bps);
    $("bps-count").textContent = `(${bps.length})`;
    $("bps-status").textContent = "No blueprints installed (blueprint files live in plugins/blueprints/).";
    $("bps-status").hidden = bps.length !== 0;
    $("bps-list").replaceChildren(...bps.map((b) => {
      const steps = Array.isArray(b.steps) ? b.steps : [];
      const params = Object.entries(b.params || {});
      const required = params.filter(([, p]) => p && p.required && p.default === undefined).map(([n]) => n);
      const card = el("li", { class: b.loadable ? "card" : "card card-bad" },
        el("h3", null, b.name ?? "?", b.loadable ? pill("loadable", "ready") : pill("cannot be loaded", "failed")),
        el("p", null, b.description || el("span", { class: "muted" }, "No description.")),
        el("p", { class: "meta" }, plural(steps.length, "step"), " · ", plural(params.length, "parameter"),
          required.length ? ` · required: ${required.join(", ")}` : "", b.file ? ` · ${b.file}` : ""));
      if (!b.loadable) {
        card.append(el("p", { class: "load-error" }, el("strong", null, "This blueprint cannot be used: "),
          b.load_error || "the server gave no reason."));
      }
      if (steps.length) {
        card.append(el("details", null, el("summary", null, "Steps"), el("ol", { class: "steps" },
          ...steps.map((s) => el("li", null, el("code", null, s.name ?? "?"), ` — plugin ${s.plugin ?? "?"}`,
            Array.isArray(s.after) && s.after.length ? `, after ${s.after.join(", ")}` : "")))));
      }
      return card;
    }));
  }

  const renderHealth = (h) => ($("health").textContent =
    `Outrigger version ${h.version || "unknown"} · server ${h.status || "?"} · database ${h.db || "?"}`);

  // ---- refresh loop: every PERIOD_MS while the tab is visible and auto refresh is on
  const jobs = [
    { name: "environments", load: loadEnvironments, render: renderEnvironments, section: "envs",
      failed: () => lastEnvs === null && $("envs-body").replaceChildren(
        el("tr", null, el("td", { colspan: 7, class: "muted" }, "Not loaded: see the message above."))) },
    { name: "blueprints", load: async () => list(await getJSON("/blueprints"), "blueprints"), render: renderBlueprints, section: "bps",
      failed: () => lastBps === null && ($("bps-status").textContent = "Not loaded: see the message above.") },
    { name: "server health", load: () => getJSON("/health"), render: renderHealth,
      failed: () => ($("health").textContent = "Server status unknown.") },
  ];
  let timer = null, busy = false;

  async function refresh() {
    if (busy) return;
    busy = true;
    clearTimeout(timer);
    const errors = await Promise.all(jobs.map(async (j) => {
      try {
        j.render(await j.load());
        return null;
      } catch (e) {
        j.failed();
        if (e instanceof ApiError) return e;
        console.warn(e);
        return new ApiError(`unexpected error in the page: ${e.message}`);
      } finally {
        if (j.section) $(j.section).setAttribute("aria-busy", "false");
      }
    }));
    const failed = errors.filter(Boolean);
    if (failed.length === jobs.length && failed.every((e) => e.network)) { // one problem, not three
      showProblems([`Cannot reach the Outrigger server at ${location.origin}. Is it running? ` +
        ($("auto").checked ? `Retrying every ${PERIOD_MS / 1000} s.` : "Press Refresh now to try again.")]);
    } else {
      showProblems(errors.map((e, i) => e && `Could not load ${jobs[i].name}: ${e.message}`).filter(Boolean));
    }
    $("updated").textContent = failed.length ? `Last attempt ${new Date().toLocaleTimeString()} (with errors)`
      : `Updated ${new Date().toLocaleTimeString()}`;
    busy = false;
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    if ($("auto").checked && !document.hidden) timer = setTimeout(refresh, PERIOD_MS);
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) clearTimeout(timer); else if ($("auto").checked) refresh();
  });
  $("auto").addEventListener("change", schedule);
  $("refresh").addEventListener("click", refresh);
  renderCurl(null);
  refresh();
})();

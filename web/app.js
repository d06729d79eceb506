"use strict";
// Outrigger dashboard: a hash-routed page over the public REST API (/api/v1) and
// nothing else, so anything it does, other tooling can do too. API data only ever
// reaches the page as text nodes or attribute values, never as HTML.
(() => {
  const API = "/api/v1";
  const LIST_POLL_MS = 3000, ENV_POLL_MS = 2000, TIMEOUT_MS = 15000;
  const LOG_RENDER_MAX = 10000; // lines kept in the DOM at once; the rest stay searchable
  const $ = (sel, root = document) => root.querySelector(sel);

  // ---------------------------------------------------------------- basics
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of kids.flat()) if (c != null && c !== false) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  // replaceChildren() would print a null as the text "null": this skips them.
  const put = (node, ...kids) => node.replaceChildren(...kids.flat().filter((k) => k != null && k !== false));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const plural = (n, w, ws) => `${n} ${n === 1 ? w : ws || w + "s"}`;
  const humanize = (s) => String(s).replace(/[_-]+/g, " ").replace(/^./, (c) => c.toUpperCase())
    .replace(/\b(vm|ip|id|gb|gke|url|cidr|ca)\b/gi, (w) => w.toUpperCase());

  function announce(text) {
    const a = $("#announce");
    a.textContent = "";
    setTimeout(() => (a.textContent = text), 30);
  }

  class ApiError extends Error {
    constructor(message, o = {}) {
      super(message);
      this.status = o.status || 0;
      this.code = o.code || "";
      this.field = o.field || "";
      this.network = !!o.network;
    }
  }

  // The acting person: sent as X-Outrigger-User on every write (the API's "who").
  const WHO_RE = /^[A-Za-z0-9._@+-]{1,64}$/;
  function who() {
    const v = ($("#who").value || "").trim();
    return WHO_RE.test(v) ? v : "";
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET" && who()) headers["X-Outrigger-User"] = who();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    let res, data = null;
    try {
      // no-cache: revalidate with the ETag, so an unchanged answer is a cheap 304.
      res = await fetch(API + path, { method, headers, cache: "no-cache", signal: ctl.signal,
        body: body === undefined ? undefined : JSON.stringify(body) });
      if (res.status !== 204) data = await res.json().catch(() => null);
    } catch (e) {
      throw new ApiError(e.name === "AbortError" ? `The server did not answer within ${TIMEOUT_MS / 1000} s.`
        : "Cannot reach the Outrigger server.", { network: true });
    } finally { clearTimeout(t); }
    if (!res.ok) {
      const err = data && data.error;
      throw new ApiError(err && err.message ? err.message : `The server answered HTTP ${res.status}.`,
        { status: res.status, code: err && err.code, field: err && err.field });
    }
    return data;
  }

  // One banner for "the server is unreachable", shared by every poller.
  const problems = new Map();
  function problem(key, msg) {
    if (msg) problems.set(key, msg); else problems.delete(key);
    const box = $("#alerts"), msgs = [...new Set(problems.values())], text = msgs.join("\n");
    if (box.dataset.text === text) return;
    box.dataset.text = text;
    put(box, ...msgs.map((m) => el("p", null, m)));
  }

  // ----------------------------------------------------------- formatting
  function toDate(v) {
    if (v == null || v === "") return null;
    const d = new Date(v);
    return isNaN(d) ? null : d;
  }
  const fmtDay = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  const fmtClock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  function timeEl(v, fmt = fmtDay) {
    const d = toDate(v);
    if (!d) return el("span", { class: "muted" }, "—");
    return el("time", { datetime: d.toISOString(), title: d.toLocaleString() }, fmt.format(d));
  }
  function fmtDuration(ms) {
    if (ms == null || !isFinite(ms) || ms < 0) return "";
    if (ms < 1000) return `${(ms / 1000).toFixed(1)} s`;
    const s = Math.round(ms / 1000);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
    return `${Math.floor(s / 3600)} h ${String(Math.floor(s / 60) % 60).padStart(2, "0")} min`;
  }
  function span(a, b) { // duration between two timestamps, b defaulting to now
    const x = toDate(a);
    if (!x) return null;
    const y = toDate(b) || new Date();
    return y - x;
  }
  function safeUrl(u) { // links go to http(s) only, never javascript: and friends
    try {
      const url = new URL(String(u), location.href);
      return /^https?:$/.test(url.protocol) ? url.href : null;
    } catch { return null; }
  }

  // Statuses: a word always, a colour as well (never the colour alone).
  const TONE = {
    draft: "off", applying: "run", ready: "ok", failed: "bad", destroying: "warn", destroyed: "gone",
    queued: "off", running: "run", succeeded: "ok", cancelled: "warn", pending: "off", skipped: "gone",
  };
  const ENV_STATUSES = ["draft", "applying", "ready", "failed", "destroying", "destroyed"];
  const FINAL = new Set(["succeeded", "failed", "cancelled"]);
  const pill = (status) => el("span", { class: `pill tone-${TONE[status] || "off"}`, "data-status": status || "unknown" },
    humanize(status || "unknown"));

  // ------------------------------------------------------- copy to clipboard
  async function copyText(text, btn) {
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch {
      const ta = el("textarea", { class: "visually-hidden", readonly: true });
      ta.value = text;
      document.body.append(ta);
      ta.select();
      try { ok = document.execCommand("copy"); } catch { ok = false; }
      ta.remove();
    }
    const old = btn.dataset.label || btn.textContent;
    btn.dataset.label = old;
    btn.textContent = ok ? "Copied" : "Copy failed";
    announce(ok ? `Copied ${text}` : "Could not copy: select the text and copy it by hand.");
    setTimeout(() => (btn.textContent = old), 1600);
  }
  const copyBtn = (text, what) => el("button", { type: "button", class: "btn small copy", "aria-label": `Copy ${what}`,
    onclick: (e) => copyText(text, e.currentTarget) }, "Copy");

  // ------------------------------------------------------------ a poller
  // Runs fn now and then every ms (slower while the tab is hidden) until stopped.
  function poller(fn, ms) {
    let timer = null, stopped = false;
    const tick = async () => {
      if (stopped) return;
      try { await fn(); } catch (e) { console.warn(e); }
      if (!stopped) timer = setTimeout(tick, document.hidden ? ms * 4 : ms);
    };
    tick();
    return { stop() { stopped = true; clearTimeout(timer); }, now() { clearTimeout(timer); tick(); } };
  }

  // ---------------------------------------------------- environments list
  function listView(root, q) {
    document.title = "Environments · Outrigger";
    let filter = ENV_STATUSES.includes(q.get("status")) ? q.get("status") : "";
    let envs = null, lastKey = "";
    const chips = el("div", { class: "chips", role: "group", "aria-label": "Filter by status" });
    const updated = el("p", { class: "updated", "aria-live": "off" }, "Loading…");
    const tbody = el("tbody");
    const table = el("div", { class: "table-wrap", hidden: true },
      el("table", { class: "envs" },
        el("caption", { class: "visually-hidden" }, "Environments, newest first"),
        el("thead", null, el("tr", null, ...["Name", "Status", "Provider", "Blueprint", "Created", "Last run", "Ingress IP"]
          .map((h) => el("th", { scope: "col" }, h)))),
        tbody));
    const empty = el("div", { class: "empty", hidden: true });
    root.append(
      el("div", { class: "page-head" },
        el("div", null, el("h1", { tabindex: "-1" }, "Environments"),
          el("p", { class: "sub" }, "Every environment this team has on this server: what exists, what is happening, and where the finished app is.")),
        el("a", { class: "btn primary", href: "#/new" }, "New environment")),
      el("div", { class: "toolbar" }, chips, updated),
      table, empty);

    function renderChips() {
      const count = (s) => (envs || []).filter((e) => !s || e.status === s).length;
      put(chips, ...["", ...ENV_STATUSES].map((s) => el("button", {
        type: "button", class: `chip${s ? " tone-" + TONE[s] : ""}`, "aria-pressed": String(filter === s),
        onclick: () => {
          filter = s;
          history.replaceState(null, "", s ? `#/?status=${s}` : "#/");
          lastKey = "";
          render();
        },
      }, s ? humanize(s) : "All", el("span", { class: "chip-n" }, String(count(s))))));
    }

    function lastRunCell(e) {
      const r = e.last_run;
      if (!r) return el("span", { class: "muted" }, "never run");
      const d = fmtDuration(span(r.started_at || r.created_at, r.finished_at));
      return el("span", { class: "lastrun" }, el("span", { class: "run-action" }, humanize(r.action)), " ", pill(r.status),
        d ? el("span", { class: "muted" }, ` ${r.finished_at ? "" : "for "}${d}`) : null);
    }
    function ingressCell(e) {
      const o = e.outputs || {};
      if (e.status === "ready" && o.ingress_ip) {
        const href = safeUrl(o.app_url) || safeUrl(`http://${o.ingress_ip}/`);
        return href ? el("a", { href, target: "_blank", rel: "noopener noreferrer", class: "mono" }, o.ingress_ip)
          : el("span", { class: "mono" }, o.ingress_ip);
      }
      return el("span", { class: "muted" }, e.status === "applying" ? "after the rollout" : "—");
    }

    function render() {
      const key = JSON.stringify([filter, envs]);
      if (key === lastKey) return; // unchanged: keep focus and scroll position
      lastKey = key;
      renderChips();
      const shown = envs.filter((e) => !filter || e.status === filter);
      put(tbody, ...shown.map((e) => el("tr", { "data-env": e.name },
        el("th", { scope: "row", "data-label": "Name" }, el("a", { href: `#/env/${encodeURIComponent(e.name)}` }, e.name)),
        el("td", { "data-label": "Status" }, pill(e.status)),
        el("td", { "data-label": "Provider" }, e.provider === "gcp" ? "Google Cloud" : humanize(e.provider || "")),
        el("td", { "data-label": "Blueprint" }, e.blueprint || ""),
        el("td", { "data-label": "Created" }, el("span", { class: "by" }, e.created_by || "anonymous"), " · ", timeEl(e.created_at)),
        el("td", { "data-label": "Last run" }, lastRunCell(e)),
        el("td", { "data-label": "Ingress IP" }, ingressCell(e)))));
      table.hidden = shown.length === 0;
      empty.hidden = shown.length !== 0;
      if (envs.length === 0) {
        put(empty, el("h2", null, "No environments yet"),
          el("p", null, "An environment is one rollout of a blueprint: a GKE cluster, a VM joined to its Istio mesh, and the Online Boutique app. The built-in sandbox needs no Google account."),
          el("p", null, el("a", { class: "btn primary", href: "#/new" }, "Create your first environment")));
      } else if (shown.length === 0) {
        put(empty, el("p", null, `No environment is ${humanize(filter).toLowerCase()}. `,
          el("button", { type: "button", class: "btn link", onclick: () => { filter = ""; history.replaceState(null, "", "#/"); render(); } }, "Show all")));
      }
    }

    async function load() {
      const all = [], seen = new Set();
      let cursor = null;
      do {
        const body = await api("GET", "/environments?limit=500" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
        all.push(...(body.environments || []));
        seen.add(cursor);
        cursor = body.next_cursor;
      } while (cursor && !seen.has(cursor));
      envs = all;
      render();
    }
    const p = poller(async () => {
      try {
        await load();
        problem("list", null);
        put(updated, el("span", { class: "live-dot", "aria-hidden": "true" }), `Live · updated ${fmtClock.format(new Date())}`);
      } catch (e) {
        problem("list", e.network ? `Cannot reach the Outrigger server at ${location.origin}; retrying every ${LIST_POLL_MS / 1000} s.` : `Could not load the environments: ${e.message}`);
        updated.textContent = `Last attempt ${fmtClock.format(new Date())} failed`;
      }
    }, LIST_POLL_MS);
    return () => { p.stop(); problem("list", null); };
  }

  // ------------------------------------------------- parameter validation
  const reCache = new Map();
  function schemaRegex(pattern) { // null when the browser cannot evaluate it (the server still does)
    if (!reCache.has(pattern)) {
      let re = null;
      try { re = new RegExp(pattern, "u"); } catch { re = null; }
      reCache.set(pattern, re);
    }
    return reCache.get(pattern);
  }
  // Returns {value} (value undefined: leave it to the blueprint's default) or {error}.
  function checkParam(s, raw) {
    const t = s.type || "string";
    if (t === "boolean") return { value: !!raw };
    const text = String(raw ?? "").trim();
    if (text === "") {
      if (s.required && s.default === undefined) return { error: "Required." };
      return { value: undefined };
    }
    let v = text;
    if (t === "integer" || t === "number") {
      if (t === "integer" ? !/^-?\d+$/.test(text) : !isFinite(Number(text))) return { error: t === "integer" ? "Enter a whole number." : "Enter a number." };
      v = Number(text);
      const lo = s.minimum, hi = s.maximum;
      if ((lo != null && v < lo) || (hi != null && v > hi)) {
        return { error: lo != null && hi != null ? `Must be from ${lo} to ${hi}.` : lo != null ? `Must be at least ${lo}.` : `Must be at most ${hi}.` };
      }
    } else if (t === "array" || t === "object") {
      try { v = JSON.parse(text); } catch { return { error: `Enter a JSON ${t}.` }; }
      if (t === "array" ? !Array.isArray(v) : (typeof v !== "object" || v === null || Array.isArray(v))) return { error: `Enter a JSON ${t}.` };
    } else if (s.pattern) {
      const re = schemaRegex(s.pattern);
      if (re && !re.test(text)) return { error: `Does not match the expected form ${s.pattern}` };
    }
    if (Array.isArray(s.enum) && !s.enum.some((x) => String(x) === String(v))) return { error: `Choose one of: ${s.enum.join(", ")}.` };
    return { value: v };
  }
  const NAME_RE = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

  // -------------------------------------------------------------- wizard
  const BP_TITLES = {
    "mesh-expansion-legacy": "Legacy tutorial flow (Istio 1.6)",
    "mesh-expansion": "Current Istio flow",
  };
  const GROUPS = [["cluster", "Cluster"], ["mesh", "Mesh"], ["vm", "VM"], ["app", "App"], ["", "Other"]];
  const firstSentence = (s) => { const m = String(s || "").match(/^.*?[.!?](\s|$)/); return m ? m[0].trim() : String(s || ""); };

  function wizardView(root) {
    document.title = "New environment · Outrigger";
    const st = { bps: [], providers: null, bp: null, provider: "sandbox", name: "", values: {}, created: null };
    let stopped = false, planRun = null;
    const head = el("div", { class: "page-head" }, el("div", null, el("h1", { tabindex: "-1" }, "New environment"),
      el("p", { class: "sub" }, "Choose a blueprint and a provider, adjust the parameters, then review what the plan says before anything is created.")));
    const stepper = el("ol", { class: "stepper", "aria-label": "Progress" });
    const body = el("div");
    root.append(head, stepper, body);

    function setStepper(active) {
      put(stepper, ...["Blueprint", "Provider", "Parameters", "Review"].map((t, i) =>
        el("li", { class: i < active ? "done" : i === active ? "current" : "", "aria-current": i === active ? "step" : null },
          el("span", { class: "n", "aria-hidden": "true" }, String(i + 1)), t)));
    }

    async function start() {
      setStepper(0);
      put(body, el("p", { class: "muted" }, "Loading blueprints…"));
      try {
        // Providers are asked about only when the API documents the endpoint, so an
        // older server costs no failed request (and no console error).
        const [b, doc] = await Promise.all([api("GET", "/blueprints"), api("GET", "/openapi.json").catch(() => null)]);
        const prov = doc && doc.paths && doc.paths["/api/v1/providers"] ? await api("GET", "/providers").catch(() => null) : null;
        st.bps = b.blueprints || [];
        st.providers = prov && Array.isArray(prov.providers) ? prov.providers : null;
      } catch (e) {
        put(body, el("p", { class: "notice bad" }, `Could not load the blueprints: ${e.message}`));
        return;
      }
      const usable = st.bps.filter((x) => x.loadable);
      st.bp = (usable.find((x) => x.name === "mesh-expansion") || usable[0] || null);
      const gcp = st.providers && st.providers.find((p) => p.name === "gcp");
      st.provider = gcp && gcp.configured ? "gcp" : "sandbox";
      st.name = `mesh-${Math.random().toString(36).slice(2, 6).replace(/^[0-9]/, "m")}`;
      resetValues();
      renderForm();
    }

    function resetValues() {
      const old = st.values;
      st.values = {};
      for (const [k, s] of Object.entries((st.bp && st.bp.params) || {})) {
        if (old[k] !== undefined) st.values[k] = old[k];
        else if (s.default !== undefined) st.values[k] = typeof s.default === "object" ? JSON.stringify(s.default) : s.default;
        else st.values[k] = "";
      }
      // The sandbox takes any well-formed project ID: offer one so a newcomer can go straight on.
      if (st.provider === "sandbox" && st.bp && st.bp.params && st.bp.params.project && st.values.project === "") st.values.project = "sandbox-project";
    }

    // ---- the form (steps 1-3)
    let form = null;
    function fieldId(key) { return key === "name" ? "f-name" : `p-${key}`; }
    function setError(key, msg, source) {
      const input = form && form.querySelector(`#${CSS.escape(fieldId(key))}`);
      const err = form && form.querySelector(`#${CSS.escape(fieldId(key))}-err`);
      if (!input || !err) return false;
      err.textContent = msg ? (source === "server" ? `The server refused this value: ${msg}` : msg) : "";
      err.dataset.source = msg ? source : "";
      input.setAttribute("aria-invalid", msg ? "true" : "false");
      input.closest(".field").classList.toggle("has-error", !!msg);
      return true;
    }

    function field(key, s) {
      const id = fieldId(key), t = s.type || "string", val = st.values[key];
      const required = s.required && s.default === undefined;
      const hints = [];
      if (s.default !== undefined) hints.push(`default ${typeof s.default === "object" ? JSON.stringify(s.default) : s.default}`);
      if (s.minimum != null || s.maximum != null) hints.push(`${s.minimum ?? "…"} to ${s.maximum ?? "…"}`);
      if (s.pattern && !schemaRegex(s.pattern)) hints.push("checked by the server");
      let input;
      const common = { id, name: key, "aria-describedby": `${id}-help ${id}-err`, "aria-invalid": "false" };
      if (t === "boolean") {
        input = el("input", { ...common, type: "checkbox" });
        input.checked = !!val;
      } else if (Array.isArray(s.enum)) {
        input = el("select", common, ...s.enum.map((o) => el("option", { value: String(o) }, String(o))));
        input.value = String(val ?? "");
      } else if (t === "array" || t === "object") {
        input = el("textarea", { ...common, rows: 2, spellcheck: "false" });
        input.value = val ?? "";
      } else {
        const num = t === "integer" || t === "number";
        input = el("input", { ...common, type: "text", inputmode: num ? (t === "integer" ? "numeric" : "decimal") : null,
          spellcheck: "false", autocomplete: "off", autocapitalize: "off", required: required || null });
        input.value = val ?? "";
      }
      const onChange = () => {
        st.values[key] = t === "boolean" ? input.checked : input.value;
        const r = checkParam(s, st.values[key]);
        setError(key, r.error || "", "client");
      };
      input.addEventListener("input", onChange);
      input.addEventListener("change", onChange);
      const label = el("label", { for: id }, humanize(key), required ? el("span", { class: "req" }, " (required)") : null,
        el("code", { class: "pname" }, key));
      return el("div", { class: `field${t === "boolean" ? " check" : ""}`, "data-param": key },
        t === "boolean" ? el("div", { class: "check-row" }, input, label) : [label, input],
        el("p", { class: "help", id: `${id}-help` }, s.description || "", hints.length ? el("span", { class: "hint" }, ` (${hints.join(" · ")})`) : null),
        el("p", { class: "err", id: `${id}-err`, "aria-live": "polite" }));
    }

    function renderForm() {
      setStepper(2);
      const alerts = el("div", { class: "form-alert", role: "alert", tabindex: "-1", hidden: true });
      const bpList = el("div", { class: "options", role: "radiogroup", "aria-labelledby": "bp-legend" });
      for (const b of st.bps) {
        const id = `bp-${b.name}`;
        const radio = el("input", { type: "radio", name: "blueprint", id, value: b.name, disabled: !b.loadable || null,
          "aria-describedby": `${id}-d` });
        radio.checked = st.bp && st.bp.name === b.name;
        radio.addEventListener("change", () => { st.bp = b; resetValues(); renderForm(); $("#" + CSS.escape(id)).focus(); });
        bpList.append(el("div", { class: `option${b.loadable ? "" : " disabled"}` }, radio,
          el("label", { for: id }, el("strong", null, BP_TITLES[b.name] || b.name),
            BP_TITLES[b.name] ? el("code", { class: "pname" }, b.name) : null),
          el("p", { id: `${id}-d`, class: "help" }, firstSentence(b.description) || "No description.",
            b.loadable ? el("span", { class: "hint" }, ` ${plural((b.steps || []).length, "step")}.`)
              : el("span", { class: "load-error" }, ` Cannot be used here: ${b.load_error || "it did not load"}`))));
      }
      const provList = el("div", { class: "options", role: "radiogroup", "aria-labelledby": "prov-legend" });
      const gcpInfo = st.providers && st.providers.find((p) => p.name === "gcp");
      const provs = [
        ["sandbox", "Sandbox", "A simulated Google Cloud that runs beside this server: real wire protocols, no account, nothing billed."],
        ["gcp", "Google Cloud", gcpInfo ? (gcpInfo.configured ? "Real GKE and Compute Engine with the credentials this server is configured with."
          : `Real GKE and Compute Engine: ${gcpInfo.detail || "no Google credentials are configured on this server"}.`)
          : "Real GKE and Compute Engine: needs Google credentials configured on this server (this server does not say whether it has them, so the sandbox is selected)."],
      ];
      for (const [v, t, d] of provs) {
        const id = `prov-${v}`;
        const radio = el("input", { type: "radio", name: "provider", id, value: v, "aria-describedby": `${id}-d` });
        radio.checked = st.provider === v;
        radio.addEventListener("change", () => { st.provider = v; setError("provider", "", ""); });
        provList.append(el("div", { class: "option" }, radio, el("label", { for: id }, el("strong", null, t)), el("p", { id: `${id}-d`, class: "help" }, d)));
      }

      const params = Object.entries((st.bp && st.bp.params) || {});
      const groups = GROUPS.map(([g, title]) => {
        const mine = params.filter(([, s]) => (GROUPS.some(([x]) => x && x === s.group) ? s.group : "") === g);
        if (!mine.length) return null;
        return el("fieldset", { class: "group" }, el("legend", null, title), el("div", { class: "grid" }, ...mine.map(([k, s]) => field(k, s))));
      });

      const nameInput = el("input", { id: "f-name", name: "name", type: "text", required: true, spellcheck: "false", autocomplete: "off",
        autocapitalize: "off", "aria-describedby": "f-name-help f-name-err", "aria-invalid": "false", maxlength: 63 });
      nameInput.value = st.name;
      nameInput.addEventListener("input", () => {
        st.name = nameInput.value.trim();
        setError("name", st.name === "" ? "Required." : NAME_RE.test(st.name) ? "" : "Use 1 to 63 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen.", "client");
      });

      form = el("form", { class: "wizard", novalidate: true, "aria-label": "New environment" },
        el("section", { class: "card step-card" }, el("h2", { id: "bp-legend" }, el("span", { class: "n" }, "1"), "Blueprint"),
          el("p", { class: "sub" }, "What to roll out: the original tutorial, faithfully, or the same outcome on current Istio."),
          bpList, el("p", { class: "err", id: "f-blueprint-err" })),
        el("section", { class: "card step-card" }, el("h2", { id: "prov-legend" }, el("span", { class: "n" }, "2"), "Provider"),
          provList, el("p", { class: "err", id: "f-provider-err" })),
        el("section", { class: "card step-card" }, el("h2", null, el("span", { class: "n" }, "3"), "Name and parameters"),
          st.bp ? el("p", { class: "sub" }, "Defaults are filled in; every field says what it is for. Values are checked as you type and again by the server.")
            : el("p", { class: "notice bad" }, "No blueprint can be used on this server: see the reasons above."),
          el("div", { class: "field", "data-param": "name" }, el("label", { for: "f-name" }, "Environment name", el("span", { class: "req" }, " (required)")),
            nameInput, el("p", { class: "help", id: "f-name-help" }, "Unique on this server; lowercase letters, digits and hyphens."),
            el("p", { class: "err", id: "f-name-err", "aria-live": "polite" })),
          ...groups),
        alerts,
        el("div", { class: "form-actions" },
          el("button", { type: "submit", class: "btn primary", disabled: !st.bp || null }, "Review the plan"),
          el("a", { class: "btn", href: "#/" }, "Cancel")));
      form.addEventListener("submit", (ev) => { ev.preventDefault(); submit(alerts); });
      put(body, form);
    }

    function showSummary(alerts, items) {
      alerts.hidden = items.length === 0;
      if (!items.length) return;
      put(alerts, el("p", null, el("strong", null, items.length === 1 ? "One field needs attention:" : `${items.length} fields need attention:`)),
        el("ul", null, ...items.map(([key, label]) => el("li", null, el("a", { href: `#${fieldId(key)}`,
          onclick: (e) => { e.preventDefault(); const f = $("#" + CSS.escape(fieldId(key))); if (f) f.focus(); } }, label)))));
    }

    async function submit(alerts) {
      if (!st.bp) return;
      const bad = [];
      const params = {};
      if (!NAME_RE.test(st.name)) { setError("name", st.name ? "Use 1 to 63 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen." : "Required.", "client"); bad.push(["name", "Environment name"]); }
      for (const [k, s] of Object.entries(st.bp.params || {})) {
        const r = checkParam(s, st.values[k]);
        if (r.error) { setError(k, r.error, "client"); bad.push([k, humanize(k)]); } else if (r.value !== undefined) params[k] = r.value;
      }
      showSummary(alerts, bad);
      if (bad.length) { $("#" + CSS.escape(fieldId(bad[0][0]))).focus(); return; }
      const btn = form.querySelector("button[type=submit]");
      btn.disabled = true;
      btn.textContent = "Checking…";
      try {
        const same = st.created && st.created.name === st.name && st.created.provider === st.provider && st.created.blueprint === st.bp.name;
        if (same) {
          await api("PATCH", `/environments/${encodeURIComponent(st.name)}`, { params });
        } else {
          if (st.created) { // a draft this wizard made a moment ago under other choices: replace it
            await api("DELETE", `/environments/${encodeURIComponent(st.created.name)}`).catch(() => null);
            st.created = null;
          }
          await api("POST", "/environments", { name: st.name, provider: st.provider, blueprint: st.bp.name, params });
          st.created = { name: st.name, provider: st.provider, blueprint: st.bp.name };
        }
        planRun = await api("POST", `/environments/${encodeURIComponent(st.name)}/runs`, { action: "plan" });
      } catch (e) {
        btn.disabled = false;
        btn.textContent = "Review the plan";
        const key = e.field === "name" ? "name" : e.field && e.field.startsWith("params.") ? e.field.slice(7)
          : e.field === "blueprint" || e.field === "provider" ? e.field : null;
        if (key === "blueprint" || key === "provider") {
          const p = $(`#f-${key}-err`);
          p.textContent = `The server refused this: ${e.message}`;
          showSummary(alerts, [[key === "blueprint" ? `bp-${st.bp.name}` : `prov-${st.provider}`, humanize(key)]]);
          return;
        }
        if (key && setError(key, e.message, "server")) {
          showSummary(alerts, [[key, key === "name" ? "Environment name" : humanize(key)]]);
          $("#" + CSS.escape(fieldId(key))).focus();
          return;
        }
        alerts.hidden = false;
        put(alerts, el("p", null, `The server refused the environment: ${e.message}`));
        alerts.focus();
        return;
      }
      renderReview();
    }

    // ---- step 4: the plan
    async function renderReview() {
      setStepper(3);
      const status = el("div", { class: "plan-status", role: "status" }, el("span", { class: "spinner", "aria-hidden": "true" }), "Planning: each step says what it would do…");
      const stepsBox = el("ol", { class: "plan-steps" });
      const startBtn = el("button", { type: "button", class: "btn primary", disabled: true }, "Start rollout");
      const back = el("button", { type: "button", class: "btn" }, "Back to parameters");
      const defaults = st.bp.params || {};
      const ptable = el("table", { class: "kv-table" }, el("caption", { class: "visually-hidden" }, "Parameters"),
        el("tbody", null, ...Object.keys(defaults).map((k) => {
          const v = st.values[k];
          const shown = v === "" || v === undefined ? defaults[k].default : v;
          const isDefault = defaults[k].default !== undefined && String(shown) === String(typeof defaults[k].default === "object" ? JSON.stringify(defaults[k].default) : defaults[k].default);
          return el("tr", null, el("th", { scope: "row" }, humanize(k)), el("td", { class: "mono" }, String(shown ?? "—")),
            el("td", { class: "muted" }, isDefault ? "default" : "set by you"));
        })));
      put(body, 
        el("section", { class: "card review" },
          el("h2", { tabindex: "-1", id: "review-h" }, `Review: ${st.name}`),
          el("p", { class: "sub" }, "Nothing has been created yet. This is what each step of the blueprint would do (the plan run asks every plugin, and changes nothing)."),
          el("dl", { class: "facts" },
            el("dt", null, "Blueprint"), el("dd", null, BP_TITLES[st.bp.name] ? `${BP_TITLES[st.bp.name]} (${st.bp.name})` : st.bp.name),
            el("dt", null, "Provider"), el("dd", null, st.provider === "gcp" ? "Google Cloud" : "Sandbox (simulated Google Cloud)"),
            el("dt", null, "Plan run"), el("dd", null, `#${planRun.id}`)),
          el("details", { class: "params-box" }, el("summary", null, `Parameters (${Object.keys(defaults).length})`), ptable)),
        el("section", { class: "card" }, el("h2", null, "What will be created"), status, stepsBox),
        el("div", { class: "form-actions" }, startBtn, back));
      $("#review-h").focus();
      back.addEventListener("click", () => renderForm());
      startBtn.addEventListener("click", async () => {
        startBtn.disabled = true;
        startBtn.textContent = "Starting…";
        try {
          const run = await api("POST", `/environments/${encodeURIComponent(st.name)}/runs`, { action: "apply" });
          location.hash = `#/env/${encodeURIComponent(st.name)}?run=${run.id}`;
        } catch (e) {
          startBtn.disabled = false;
          startBtn.textContent = "Start rollout";
          put(status, el("span", { class: "notice bad" }, `Could not start the rollout: ${e.message}`));
        }
      });
      // Wait for the plan to finish, then show each step with what it said.
      let run = planRun;
      for (let i = 0; !FINAL.has(run.status) && !stopped; i++) {
        await sleep(Math.min(200 + i * 100, 1000));
        try { run = await api("GET", `/runs/${planRun.id}`); } catch (e) { if (!e.network) break; }
      }
      if (stopped) return;
      const lines = [];
      try {
        let after = null;
        do {
          const page = await api("GET", `/runs/${run.id}/logs?limit=5000${after ? "&after=" + encodeURIComponent(after) : ""}`);
          lines.push(...(page.lines || []));
          after = page.next_after;
        } while (after && lines.length < 50000);
      } catch (e) { lines.push({ step: "", stream: "error", text: `Could not load the plan's output: ${e.message}` }); }
      const byStep = new Map();
      for (const l of lines) { if (!byStep.has(l.step)) byStep.set(l.step, []); byStep.get(l.step).push(l); }
      put(stepsBox, ...orderSteps(run.steps || []).map((s) => el("li", { class: `plan-step status-${s.status}` },
        el("div", { class: "plan-step-head" }, el("strong", null, s.name), el("span", { class: "muted" }, ` ${s.plugin}`), " ", pill(s.status),
          (s.after || []).length ? el("span", { class: "muted after" }, ` after ${s.after.join(", ")}`) : el("span", { class: "muted after" }, " starts at once")),
        (byStep.get(s.name) || []).length ? el("pre", { class: "plan-out" }, (byStep.get(s.name) || []).map((l) => l.text).join("\n"))
          : el("p", { class: "muted" }, "Nothing to say."),
        s.error ? el("p", { class: "notice bad" }, `${s.error.code ? s.error.code + ": " : ""}${s.error.message || ""}`) : null)));
      if (run.status === "succeeded") {
        put(status, pill("succeeded"), ` The plan ran: ${plural((run.steps || []).length, "step")} will run, those without "after" in parallel.`);
        startBtn.disabled = false;
        startBtn.focus();
      } else {
        put(status, pill(run.status), ` The plan did not succeed${run.error && run.error.message ? ": " + run.error.message : ""}. Go back and change the parameters.`);
      }
    }

    start();
    return () => { stopped = true; };
  }

  // Steps by depth in the graph, then blueprint order: reads top-down like the graph.
  function orderSteps(steps) {
    const byName = new Map(steps.map((s, i) => [s.name, { s, i }]));
    const depth = new Map();
    const d = (name, seen = new Set()) => {
      if (depth.has(name)) return depth.get(name);
      if (seen.has(name)) return 0;
      seen.add(name);
      const it = byName.get(name);
      const v = it ? Math.max(0, ...(it.s.after || []).map((a) => d(a, seen) + 1)) : 0;
      depth.set(name, v);
      return v;
    };
    return steps.map((s, i) => ({ s, i, k: d(s.name) })).sort((a, b) => a.k - b.k || a.i - b.i).map((x) => Object.assign(x.s, { depth: x.k }));
  }

  // -------------------------------------------------- the events stream
  // Server-Sent Events read with fetch(), so every reconnection sends the last id
  // seen as Last-Event-ID, and events at or below it are dropped: no line is lost
  // (the server replays from that id) and none is shown twice.
  class RunStream {
    constructor(runId, onEvent, onState) {
      this.url = `${API}/runs/${runId}/events`;
      this.last = 0;
      this.onEvent = onEvent;
      this.onState = onState;
      this.ctl = null;
      this.stopped = false;
      this.running = false;
      this.retryMs = 1000;
    }
    start() { // (again, after a retry of a finished run)
      this.stopped = false;
      if (!this.running) this.loop();
    }
    stop() { this.stopped = true; if (this.ctl) this.ctl.abort(); }
    async loop() {
      this.running = true;
      let backoff = 250, finished = false;
      while (!this.stopped && !finished) {
        this.onState(this.last ? "reconnecting" : "connecting");
        this.ctl = new AbortController();
        try {
          const headers = { Accept: "text/event-stream" };
          if (this.last > 0) headers["Last-Event-ID"] = String(this.last);
          const res = await fetch(this.url, { headers, cache: "no-store", signal: this.ctl.signal });
          if (res.status === 404) { this.onState("gone"); break; }
          if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
          this.onState("live");
          backoff = 250;
          finished = await this.read(res.body);
        } catch (e) {
          if (this.stopped) break;
        }
        if (!finished && !this.stopped) {
          this.onState("reconnecting");
          await sleep(Math.max(backoff, Math.min(this.retryMs, 5000)));
          backoff = Math.min(backoff * 2, 5000);
        }
      }
      this.running = false;
      if (finished && !this.stopped) this.onState("finished");
    }
    async read(stream) { // true when the run's final event arrived
      const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "", ev = { id: null, event: "message", data: [] }, finished = false;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let nl;
        while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + (buf[nl] === "\r" && buf[nl + 1] === "\n" ? 2 : 1));
          if (line === "") {
            if (ev.data.length && this.dispatch(ev)) finished = true;
            ev = { id: null, event: "message", data: [] };
            continue;
          }
          if (line[0] === ":") continue;
          const c = line.indexOf(":");
          const f = c < 0 ? line : line.slice(0, c);
          let v = c < 0 ? "" : line.slice(c + 1);
          if (v[0] === " ") v = v.slice(1);
          if (f === "data") ev.data.push(v);
          else if (f === "event") ev.event = v;
          else if (f === "id") ev.id = v;
          else if (f === "retry" && /^\d+$/.test(v)) this.retryMs = Number(v);
        }
      }
      return finished;
    }
    dispatch(ev) {
      const id = Number(ev.id);
      if (Number.isFinite(id) && id > 0) {
        if (id <= this.last) return false; // seen before a reconnection
        this.last = id;
      }
      let data;
      try { data = JSON.parse(ev.data.join("\n")); } catch { return false; }
      this.onEvent(ev.event, data);
      return ev.event === "run" && FINAL.has(data.status);
    }
  }

  // ------------------------------------------------------- the log viewer
  // Error lines: logged at level error, or a command's standard error (which the exec
  // plugin logs as warn) that says so; warnings: the rest of warn.
  const ERR_WORDS = /\b(error|errors|failed|failure|fatal|panic|refused|denied|exception)\b/i;
  const lineKind = (l) => (l.stream === "error" || ((l.stream === "stderr" || l.stream === "warn") && ERR_WORDS.test(l.text)) ? "error"
    : l.stream === "warn" || (l.stream === "stderr" && /^\s*warn(ing)?\b/i.test(l.text)) ? "warn" : "");

  function logViewer() {
    const lines = [], seqs = new Set();
    let stepFilter = "", query = "", errorsOnly = false, follow = true, unseen = 0, pending = [], raf = 0, errCursor = -1;
    const stepSel = el("select", { id: "log-step" }, el("option", { value: "" }, "All steps"));
    const search = el("input", { id: "log-search", type: "search", placeholder: "Search the logs", spellcheck: "false", autocomplete: "off" });
    const errOnly = el("input", { id: "log-errors", type: "checkbox" });
    const followBtn = el("button", { type: "button", class: "btn small", id: "log-follow", "aria-pressed": "true" }, "Following");
    const nextErr = el("button", { type: "button", class: "btn small", id: "log-next-error" }, "Next error");
    const count = el("span", { class: "muted log-count", "aria-live": "off" });
    const resume = el("button", { type: "button", class: "btn small resume", hidden: true }, "");
    const view = el("div", { class: "logview", id: "logview", role: "log", "aria-label": "Step logs", tabindex: "0", "aria-live": "off" });
    const empty = el("p", { class: "muted log-empty" }, "No log lines yet.");
    const box = el("div", { class: "logs" },
      el("div", { class: "log-tools" },
        el("label", { for: "log-step" }, "Step"), stepSel,
        el("label", { for: "log-search", class: "visually-hidden" }, "Search the logs"), search,
        el("span", { class: "check-row" }, errOnly, el("label", { for: "log-errors" }, "Errors only")),
        nextErr, followBtn, count),
      view, empty, resume);

    const matches = (l) => (!stepFilter || l.step === stepFilter) && (!errorsOnly || lineKind(l) === "error") &&
      (!query || l.text.toLowerCase().includes(query) || (l.step || "").toLowerCase().includes(query));

    function lineEl(l) {
      const kind = lineKind(l);
      const text = el("span", { class: "t" });
      if (query) { // highlight each match of the search
        const low = l.text.toLowerCase();
        let i = 0, j;
        while ((j = low.indexOf(query, i)) >= 0) {
          text.append(l.text.slice(i, j), el("mark", null, l.text.slice(j, j + query.length)));
          i = j + query.length;
        }
        text.append(l.text.slice(i));
      } else text.textContent = l.text;
      return el("div", { class: `ln${kind ? " " + kind : ""}${l.stream === "stderr" ? " stderr" : ""}`, "data-seq": l.seq, "data-step": l.step || "" },
        el("span", { class: "ts" }, toDate(l.ts) ? fmtClock.format(toDate(l.ts)) : ""),
        el("span", { class: "st" }, l.step || "run"),
        kind === "error" ? el("span", { class: "visually-hidden" }, "error: ") : null,
        text);
    }
    const atBottom = () => view.scrollHeight - view.scrollTop - view.clientHeight < 40;
    function setFollow(on) {
      follow = on;
      followBtn.setAttribute("aria-pressed", String(on));
      followBtn.textContent = on ? "Following" : "Paused";
      if (on) { unseen = 0; view.scrollTop = view.scrollHeight; }
      updateResume();
    }
    function updateResume() {
      resume.hidden = follow || unseen === 0;
      resume.textContent = `${plural(unseen, "new line")} below · resume following`;
    }
    function updateCount() {
      const errs = lines.filter((l) => lineKind(l) === "error").length;
      count.textContent = `${plural(lines.length, "line")}${errs ? ` · ${plural(errs, "error")}` : ""}`;
      nextErr.disabled = errs === 0;
      empty.hidden = view.childElementCount > 0;
    }
    function trim() { while (view.childElementCount > LOG_RENDER_MAX) view.firstElementChild.remove(); }
    function flush() {
      raf = 0;
      const frag = document.createDocumentFragment();
      let added = 0;
      for (const l of pending) if (matches(l)) { frag.append(lineEl(l)); added++; }
      pending = [];
      if (!added) { updateCount(); return; }
      view.append(frag);
      trim();
      if (follow) view.scrollTop = view.scrollHeight;
      else { unseen += added; updateResume(); }
      updateCount();
    }
    function rerender() {
      const shown = lines.filter(matches).slice(-LOG_RENDER_MAX);
      put(view, ...shown.map(lineEl));
      errCursor = -1;
      if (follow) view.scrollTop = view.scrollHeight;
      updateCount();
    }
    function addStep(name) {
      if (!name || [...stepSel.options].some((o) => o.value === name)) return;
      stepSel.append(el("option", { value: name }, name));
    }

    stepSel.addEventListener("change", () => { stepFilter = stepSel.value; rerender(); });
    let searchTimer = 0;
    search.addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(() => { query = search.value.trim().toLowerCase(); rerender(); }, 120); });
    errOnly.addEventListener("change", () => { errorsOnly = errOnly.checked; rerender(); });
    followBtn.addEventListener("click", () => setFollow(!follow));
    resume.addEventListener("click", () => setFollow(true));
    view.addEventListener("scroll", () => { // scrolling up pauses, back at the bottom resumes
      if (follow && !atBottom() && view.dataset.auto !== "1") setFollow(false);
      else if (!follow && atBottom()) setFollow(true);
    }, { passive: true });
    nextErr.addEventListener("click", () => {
      const errs = [...view.querySelectorAll(".ln.error")];
      if (!errs.length) return;
      errCursor = (errCursor + 1) % errs.length;
      setFollow(false);
      view.querySelectorAll(".ln.current").forEach((n) => n.classList.remove("current"));
      errs[errCursor].classList.add("current");
      errs[errCursor].scrollIntoView({ block: "center" });
    });

    return {
      el: box,
      steps(names) { names.forEach(addStep); },
      add(l) {
        if (seqs.has(l.seq)) return; // the stream already drops repeats; this is a second guard
        seqs.add(l.seq);
        lines.push(l);
        addStep(l.step);
        pending.push(l);
        if (!raf) raf = requestAnimationFrame(flush);
      },
      showStep(name) { stepSel.value = name; stepFilter = name; rerender(); view.focus(); },
      reset() { lines.length = 0; seqs.clear(); pending = []; view.replaceChildren(); updateCount(); },
      get size() { return lines.length; },
    };
  }

  // ----------------------------------------------------- environment page
  function envView(root, name, q) {
    document.title = `${name} · Outrigger`;
    let env = null, run = null, runId = Number(q.get("run")) || null, stream = null, runTimer = 0;
    const logs = logViewer();
    const head = el("div", { class: "page-head env-head" });
    const actions = el("div", { class: "actions", role: "group", "aria-label": "Actions" });
    const note = el("div", { class: "action-note", role: "status" });
    const appPanel = el("section", { class: "app-panel", "aria-labelledby": "app-h", hidden: true });
    const runHead = el("div", { class: "run-head" });
    const progress = el("div", { class: "progress-wrap" });
    const timeline = el("div", { class: "timeline-wrap" });
    const streamState = el("span", { class: "stream-state", role: "status" });
    const resBox = el("div");
    const paramBox = el("details", { class: "card params-box" });
    const dialog = destroyDialog();
    root.append(
      el("p", { class: "crumbs" }, el("a", { href: "#/" }, "← Environments")),
      head, actions, note, appPanel,
      el("section", { class: "card rollout", "aria-labelledby": "run-h" }, runHead, progress, timeline),
      el("section", { class: "card", "aria-labelledby": "logs-h" },
        el("div", { class: "section-head" }, el("h2", { id: "logs-h" }, "Logs"), streamState), logs.el),
      el("section", { class: "card", "aria-labelledby": "res-h" }, el("h2", { id: "res-h" }, "Resources"), resBox),
      paramBox, dialog.el);

    function renderHead() {
      const created = el("span", null, "created by ", el("strong", null, env.created_by || "anonymous"), " ", timeEl(env.created_at));
      put(head, el("div", null,
        el("h1", { tabindex: "-1" }, env.name, " ", pill(env.status)),
        el("p", { class: "sub meta" }, env.provider === "gcp" ? "Google Cloud" : "Sandbox", " · blueprint ", el("strong", null, env.blueprint), " · ", created,
          env.updated_at && env.updated_at !== env.created_at ? [" · updated ", timeEl(env.updated_at)] : null)));
    }

    function act(label, cls, fn, extra = {}) {
      return el("button", { type: "button", class: `btn ${cls}`, ...extra, onclick: async (e) => {
        const b = e.currentTarget;
        b.disabled = true;
        try { await fn(); note.textContent = ""; } catch (err) { put(note, el("span", { class: "notice bad" }, err.message)); }
        b.disabled = false;
        refresh();
      } }, label);
    }
    async function startRun(action) {
      const r = await api("POST", `/environments/${encodeURIComponent(name)}/runs`, { action });
      announce(`${humanize(action)} run ${r.id} started`);
      switchRun(r.id, r);
    }
    function renderActions() {
      const active = env.active_run_id != null;
      const lr = run || env.last_run;
      const kids = [];
      if (!active && ["draft", "failed", "destroyed"].includes(env.status) && !(lr && ["failed", "cancelled"].includes(lr.status) && lr.action !== "plan"))
        kids.push(act(env.status === "draft" ? "Start rollout" : "Roll out again", "primary", () => startRun("apply"), { id: "act-apply" }));
      if (!active && lr && ["failed", "cancelled"].includes(lr.status) && lr.action !== "plan")
        kids.push(act(`Retry ${lr.action}`, "primary", async () => {
          await api("POST", `/runs/${lr.id}/retry`);
          announce(`Run ${lr.id} retried`);
          switchRun(lr.id, null, true);
        }, { id: "act-retry" }));
      if (!active && lr && ["failed", "cancelled"].includes(lr.status) && lr.action === "apply" && env.status !== "destroyed")
        kids.push(act("Roll out again", "", () => startRun("apply"), { id: "act-apply" }));
      if (active) kids.push(act("Cancel run", "warn", async () => {
        await api("POST", `/runs/${env.active_run_id}/cancel`);
        announce("Cancel requested");
      }, { id: "act-cancel" }));
      if (!active && env.status !== "destroyed" && env.status !== "draft")
        kids.push(el("button", { type: "button", class: "btn danger", id: "act-destroy", onclick: () => dialog.open("destroy") }, "Destroy…"));
      if (!active && (env.status === "destroyed" || env.status === "draft"))
        kids.push(el("button", { type: "button", class: "btn", id: "act-forget", onclick: () => dialog.open("forget") }, "Forget…"));
      const key = kids.map((k) => k.id + k.textContent).join("|");
      if (actions.dataset.key === key) return; // keep focus on an unchanged button
      actions.dataset.key = key;
      put(actions, ...kids);
    }

    function renderApp() {
      const o = env.outputs || {};
      const show = env.status === "ready" && (o.ingress_ip || o.app_url || o.kiali_url);
      appPanel.hidden = !show;
      if (!show) { appPanel.replaceChildren(); return; }
      const key = JSON.stringify(o);
      if (appPanel.dataset.key === key) return;
      appPanel.dataset.key = key;
      const app = safeUrl(o.app_url) || (o.ingress_ip ? safeUrl(`http://${o.ingress_ip}/`) : null);
      const kiali = safeUrl(o.kiali_url);
      const big = (label, text, href, id) => el("div", { class: "big-link" },
        el("span", { class: "big-label" }, label),
        el("div", { class: "big-row" }, href ? el("a", { href, target: "_blank", rel: "noopener noreferrer", class: "big-val", id }, text)
          : el("span", { class: "big-val", id }, text), copyBtn(text, label)));
      const rest = Object.entries(o).filter(([k]) => !["ingress_ip", "app_url", "kiali_url"].includes(k));
      put(appPanel, 
        el("h2", { id: "app-h" }, "The app is live"),
        el("p", { class: "sub" }, "Online Boutique answers through the mesh's ingress gateway; its product catalog is served from the VM."),
        el("div", { class: "big-links" },
          o.ingress_ip ? big("Ingress IP", o.ingress_ip, app, "out-ingress") : null,
          app ? big("App", o.app_url || app, app, "out-app") : null,
          kiali ? big("Kiali", o.kiali_url, kiali, "out-kiali") : null),
        rest.length ? el("dl", { class: "facts small" }, ...rest.flatMap(([k, v]) => [el("dt", null, humanize(k)),
          el("dd", { class: "mono" }, typeof v === "object" ? JSON.stringify(v) : String(v))])) : null);
    }

    // The attributes the rollout's plugins record (plugins/gke-cluster.c,
    // gce-instance.c, gce-firewall.c), in reading order; others follow.
    const RES_KEYS = ["endpoint", "location", "zone", "region", "network", "pod_cidr", "service_cidr", "version",
      "internal_ip", "external_ip", "tag", "machine_type", "direction", "source_ranges", "allowed", "target_tags"];
    // Compute's allowed rules [{IPProtocol, ports}] as gcloud prints them: tcp:3550.
    const ruleText = (r) => (r && r.IPProtocol ? (r.ports && r.ports.length ? r.ports.map((p) => `${r.IPProtocol}:${p}`).join(", ") : r.IPProtocol) : JSON.stringify(r));
    function renderResources() {
      const r = env.resources || {};
      const rows = [["clusters", "Cluster"], ["vms", "VM"], ["firewall_rules", "Firewall rule"]]
        .flatMap(([k, label]) => (r[k] || []).map((x) => ({ ...x, kind: label })));
      const key = JSON.stringify(rows);
      if (resBox.dataset.key === key) return;
      resBox.dataset.key = key;
      if (!rows.length) {
        put(resBox, el("p", { class: "muted", id: "res-empty" }, env.status === "draft" || env.status === "destroyed"
          ? "This environment owns no cloud resources." : "No cloud resources recorded yet: steps record their cluster, VM and firewall rule as they create them."));
        return;
      }
      const details = (attrs) => {
        const a = attrs && typeof attrs === "object" ? attrs : {};
        const keys = [...RES_KEYS.filter((k) => k in a), ...Object.keys(a).filter((k) => !RES_KEYS.includes(k)).sort()];
        return el("dl", { class: "kv" }, ...keys.flatMap((k) => [el("dt", null, humanize(k)),
          el("dd", { class: "mono" }, Array.isArray(a[k])
            ? a[k].map((x) => (x && typeof x === "object" ? ruleText(x) : String(x))).join(", ")
            : typeof a[k] === "object" ? JSON.stringify(a[k]) : String(a[k]))]));
      };
      put(resBox, el("div", { class: "table-wrap" }, el("table", { class: "resources" },
        el("caption", { class: "visually-hidden" }, "Cloud resources of this environment"),
        el("thead", null, el("tr", null, ...["Kind", "Name", "Status", "Details", "Made by step"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", null, ...rows.map((x) => el("tr", null,
          el("td", { "data-label": "Kind" }, x.kind),
          el("th", { scope: "row", "data-label": "Name" }, x.self_link ? el("span", { title: x.self_link }, x.name) : x.name),
          el("td", { "data-label": "Status" }, x.status || "—"),
          el("td", { "data-label": "Details" }, details(x.attrs)),
          el("td", { "data-label": "Made by step" }, x.step || "—")))))));
    }

    function renderParams() {
      const p = env.params || {};
      const key = JSON.stringify(p);
      if (paramBox.dataset.key === key) return;
      paramBox.dataset.key = key;
      put(paramBox, el("summary", null, `Parameters (${Object.keys(p).length})`),
        el("table", { class: "kv-table" }, el("tbody", null, ...Object.entries(p).map(([k, v]) =>
          el("tr", null, el("th", { scope: "row" }, humanize(k)), el("td", { class: "mono" }, typeof v === "object" ? JSON.stringify(v) : String(v)))))));
    }

    // ---- the run: progress, timeline, steps
    // Where the run began: its earliest step (started_at is the latest round's after a retry).
    function runStart(r) {
      const ts = [r.started_at, ...(r.steps || []).map((x) => x.started_at)].map(toDate).filter(Boolean);
      return ts.length ? new Date(Math.min(...ts)) : toDate(r.created_at) || new Date();
    }
    function renderRun() {
      if (!run) {
        put(runHead, el("h2", { id: "run-h" }, "Rollout"), el("p", { class: "muted" }, "Nothing has run yet. Start the rollout to see each step here, live."));
        progress.replaceChildren();
        timeline.replaceChildren();
        return;
      }
      const steps = orderSteps(run.steps || []);
      const n = steps.length, ok = steps.filter((s) => s.status === "succeeded").length;
      const failed = steps.filter((s) => s.status === "failed").length, running = steps.filter((s) => s.status === "running").length;
      const dur = fmtDuration((toDate(run.finished_at) || new Date()) - runStart(run));
      put(runHead, 
        el("h2", { id: "run-h" }, `${humanize(run.action)} run #${run.id} `, pill(run.status)),
        el("p", { class: "sub" }, `started by ${run.created_by || "anonymous"} `, timeEl(run.started_at || run.created_at),
          dur ? ` · ${run.finished_at ? "took" : "running for"} ${dur}` : "", run.round > 1 ? ` · round ${run.round} (retried)` : "",
          run.cancel_requested && !FINAL.has(run.status) ? " · cancelling…" : ""),
        run.error ? el("p", { class: "notice bad" }, `${run.error.message || run.error.code}`) : null);
      const pct = n ? Math.round((ok / n) * 100) : 0;
      put(progress, 
        el("div", { class: "progress-label" }, el("span", { id: "progress-text" }, `${ok} of ${plural(n, "step")} done`,
          running ? ` · ${running} running` : "", failed ? ` · ${failed} failed` : ""), el("span", null, `${pct}%`)),
        el("div", { class: `bar tone-${TONE[run.status] || "off"}`, role: "progressbar", "aria-labelledby": "progress-text",
          "aria-valuemin": "0", "aria-valuemax": String(n), "aria-valuenow": String(ok) },
        (() => { const f = el("div", { class: "bar-fill" }); f.style.width = `${pct}%`; return f; })()));

      // Timeline: one row a step, its bar placed where it ran; overlapping bars ran in parallel.
      const t0 = runStart(run);
      const tEnd = toDate(run.finished_at) || new Date();
      const total = Math.max(tEnd - t0, 1);
      const rows = steps.map((s) => {
        const a = toDate(s.started_at), b = toDate(s.finished_at) || (s.status === "running" ? new Date() : null);
        const track = el("div", { class: "track", "aria-hidden": "true" });
        if (a) {
          const bar = el("div", { class: `tbar tone-${TONE[s.status] || "off"}${s.status === "running" ? " moving" : ""}` });
          const left = Math.max(0, Math.min(100, ((a - t0) / total) * 100));
          bar.style.left = `${left}%`;
          bar.style.width = `${Math.max(0.8, Math.min(100 - left, (((b || a) - a) / total) * 100))}%`;
          track.append(bar);
        } else {
          track.append(el("span", { class: "waiting" }, s.status === "pending" ? (s.after && s.after.length ? `waits for ${s.after.join(", ")}` : "waiting to start") : humanize(s.status)));
        }
        const d = a ? fmtDuration((b || new Date()) - a) : "";
        return el("li", { class: `trow status-${s.status}`, "data-step": s.name },
          el("div", { class: "tlabel" },
            el("button", { type: "button", class: "step-name", title: `Show the logs of ${s.name}`, onclick: () => logs.showStep(s.name) },
              s.depth ? el("span", { class: "indent", "aria-hidden": "true" }, "↳ ") : null, s.name),
            pill(s.status),
            el("span", { class: "tmeta" }, s.attempts > 1 ? `${s.attempts} attempts` : s.attempts === 1 ? "1 attempt" : "",
              d ? ` · ${d}` : "", el("span", { class: "visually-hidden" }, s.after && s.after.length ? ` after ${s.after.join(", ")}` : ""))),
          track,
          s.error ? el("p", { class: "terr" }, el("strong", null, s.error.code || "error"), `: ${s.error.message || ""}`) : null);
      });
      put(timeline, 
        el("div", { class: "axis", "aria-hidden": "true" }, el("span", null, "0 s"), el("span", null, fmtDuration(total / 2)), el("span", null, fmtDuration(total))),
        el("ol", { class: "timeline", "aria-label": "Steps, in the order of the graph" }, ...rows));
      logs.steps(steps.map((s) => s.name));
    }

    async function loadRun() {
      if (!runId) return;
      try {
        run = await api("GET", `/runs/${runId}`);
        renderRun();
        renderActions();
      } catch (e) { if (!e.network) put(note, el("span", { class: "notice bad" }, `Could not load run ${runId}: ${e.message}`)); }
    }
    function soon() { // many events in a burst: one fetch of the run
      if (runTimer) return;
      runTimer = setTimeout(() => { runTimer = 0; loadRun(); }, 150);
    }
    const STATE_TEXT = { connecting: "Connecting…", live: "● Live", reconnecting: "Reconnecting…", finished: "Complete", gone: "Run not found" };
    function switchRun(id, initial, resume) {
      if (id !== runId || !stream) {
        if (stream) stream.stop();
        runId = id;
        run = initial || null;
        logs.reset();
        history.replaceState(null, "", `#/env/${encodeURIComponent(name)}?run=${id}`);
        stream = new RunStream(id, (type, data) => {
          if (type === "log") logs.add(data);
          else soon();
          if (type === "run" && FINAL.has(data.status)) refresh();
        }, (s) => { streamState.textContent = STATE_TEXT[s] || s; streamState.dataset.state = s; });
        stream.start();
      } else if (resume) stream.start();
      if (run) renderRun();
      loadRun();
    }

    async function refresh() {
      try {
        env = await api("GET", `/environments/${encodeURIComponent(name)}`);
        problem("env", null);
      } catch (e) {
        if (e.status === 404) {
          p.stop();
          put(head, el("h1", { tabindex: "-1" }, name));
          put(note, el("p", { class: "notice bad" }, `There is no environment named ${name} (any more). `, el("a", { href: "#/" }, "Back to the list")));
          return;
        }
        problem("env", e.network ? `Cannot reach the Outrigger server at ${location.origin}; retrying.` : `Could not load ${name}: ${e.message}`);
        return;
      }
      renderHead();
      renderApp();
      renderResources();
      renderParams();
      const want = env.active_run_id || runId || (env.last_run && env.last_run.id) || null;
      if (want && want !== runId) switchRun(want);
      else if (want && !stream) switchRun(want);
      else if (run && !FINAL.has(run.status)) loadRun(); // keeps the bars of running steps moving
      if (env.active_run_id && stream && env.active_run_id === runId) stream.start();
      if (!want) renderRun();
      renderActions();
    }

    function destroyDialog() {
      const input = el("input", { id: "confirm-name", type: "text", spellcheck: "false", autocomplete: "off", autocapitalize: "off" });
      const go = el("button", { type: "submit", class: "btn danger", id: "confirm-go", disabled: true });
      const text = el("div");
      const err = el("p", { class: "err", role: "alert" });
      let mode = "destroy";
      const form = el("form", { method: "dialog" }, el("h2", { id: "dlg-h" }), text,
        el("div", { class: "field" }, el("label", { for: "confirm-name" }, "Type the environment's name to confirm"), input), err,
        el("div", { class: "form-actions" }, go, el("button", { type: "button", class: "btn", value: "cancel", onclick: () => d.close() }, "Keep it")));
      const d = el("dialog", { class: "dialog", "aria-labelledby": "dlg-h" }, form);
      input.addEventListener("input", () => { go.disabled = input.value.trim() !== name; });
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        if (input.value.trim() !== name) return;
        go.disabled = true;
        try {
          if (mode === "destroy") await startRun("destroy");
          else { await api("DELETE", `/environments/${encodeURIComponent(name)}`); location.hash = "#/"; }
          d.close();
          refresh();
        } catch (ex) { err.textContent = ex.message; go.disabled = false; }
      });
      return {
        el: d,
        open(m) {
          mode = m;
          const res = env && env.resources ? ["clusters", "vms", "firewall_rules"].reduce((n, k) => n + (env.resources[k] || []).length, 0) : 0;
          $("#dlg-h", d).textContent = m === "destroy" ? `Destroy ${name}?` : `Forget ${name}?`;
          put(text, m === "destroy"
            ? el("p", null, "This deletes what the environment ", el("strong", null, name), " made on ", env.provider === "gcp" ? "Google Cloud" : "the sandbox",
              ` — ${res ? plural(res, "recorded resource") : "its cluster, VM and firewall rule"} — by running the blueprint's steps in reverse. The app and its ingress IP stop working.`)
            : el("p", null, "This removes ", el("strong", null, name), " from this server's list. It deletes nothing in the cloud; the audit trail keeps the record."));
          go.textContent = m === "destroy" ? `Destroy ${name}` : `Forget ${name}`;
          input.value = "";
          err.textContent = "";
          go.disabled = true;
          d.showModal();
          input.focus();
        },
      };
    }

    const p = poller(refresh, ENV_POLL_MS);
    return () => { p.stop(); if (stream) stream.stop(); clearTimeout(runTimer); problem("env", null); };
  }

  // ---------------------------------------------------------------- router
  let cleanup = null, first = true;
  function route() {
    if (cleanup) { try { cleanup(); } catch (e) { console.warn(e); } }
    cleanup = null;
    const h = location.hash.replace(/^#/, "") || "/";
    const [path, qs] = h.split("?");
    const q = new URLSearchParams(qs || "");
    const parts = path.split("/").filter(Boolean).map((x) => { try { return decodeURIComponent(x); } catch { return x; } });
    const view = $("#view");
    view.replaceChildren();
    let nav = "";
    if (parts.length === 0) { cleanup = listView(view, q); nav = "list"; }
    else if (parts[0] === "new") { cleanup = wizardView(view, q); nav = "new"; }
    else if (parts[0] === "env" && parts[1]) cleanup = envView(view, parts[1], q);
    else view.append(el("h1", { tabindex: "-1" }, "Not found"), el("p", null, el("a", { href: "#/" }, "Back to the environments")));
    document.querySelectorAll("[data-nav]").forEach((a) => { if (a.dataset.nav === nav) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current"); });
    if (!first) { const h1 = $("h1", view); if (h1) h1.focus({ preventScroll: false }); }
    first = false;
  }

  // Who am I: remembered in this browser, checked as typed.
  const whoInput = $("#who");
  try { whoInput.value = localStorage.getItem("outrigger.who") || ""; } catch { /* storage off */ }
  whoInput.addEventListener("input", () => {
    const v = whoInput.value.trim();
    whoInput.setAttribute("aria-invalid", String(v !== "" && !WHO_RE.test(v)));
    try { localStorage.setItem("outrigger.who", v); } catch { /* storage off */ }
  });

  poller(async () => {
    try {
      const h = await api("GET", "/health");
      $("#health").textContent = `Outrigger ${h.version || ""} · server ${h.status || "?"} · database ${h.db || "?"}`;
      problem("health", null);
    } catch (e) {
      $("#health").textContent = "Server status unknown.";
      problem("health", e.network ? `Cannot reach the Outrigger server at ${location.origin}; retrying.` : null);
    }
  }, 10000);
  window.addEventListener("hashchange", route);
  route();
})();

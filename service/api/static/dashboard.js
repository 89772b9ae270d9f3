// The hwnas dashboard: plain JavaScript over the public /v1 API, no libraries.
// Plots are SVG drawn here, so that the page needs nothing beyond this server.
"use strict";

(() => {
  const TOKEN_KEY = "hwnas-token";
  const POLL_MS = 2000;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    canWrite: false,
    supernets: [],
    devices: [],
    jobs: [],
    jobsShown: "", // the job list as last drawn
    selectedJob: null,
    trials: new Map(), // job id -> trials read so far (read incrementally)
    pollTimer: null,
  };

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // ---- small helpers -------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "class") node.setAttribute("class", value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  function fmt(value, digits = 4) {
    if (value === null || value === undefined) return "–";
    if (typeof value !== "number") return String(value);
    if (!Number.isFinite(value)) return String(value);
    return String(Number(value.toPrecision(digits)));
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "–";
  }

  function sourceText(source) {
    if (source === "measured") return "measured (a real evaluation)";
    if (source === "predicted") return "predicted (latency model, not measured)";
    return source || "unknown";
  }

  // ---- the API -------------------------------------------------------------

  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    if (state.token) headers.Authorization = "Bearer " + state.token;
    const response = await fetch(path, Object.assign({}, options, { headers }));
    if (!response.ok) {
      let message = response.statusText;
      try {
        const body = await response.json();
        message = (body.error && body.error.message) || body.detail || message;
      } catch (_) {
        // Not JSON (a proxy's page, say): the status text is all we have.
      }
      throw new ApiError(response.status, message);
    }
    return options.raw ? response : response.json();
  }

  function describe(err) {
    if (err instanceof ApiError) {
      if (err.status === 401) return `Not authorised (401): ${err.message}`;
      if (err.status === 403) return `Forbidden (403): ${err.message}`;
      return `Error ${err.status}: ${err.message}`;
    }
    return String(err && err.message ? err.message : err);
  }

  // A refused token sends the user back to the token form; anything else is
  // shown in the banner (or next to what failed, via ``where``).
  function report(err, where) {
    if (err instanceof ApiError && err.status === 401 && state.token !== null) {
      forgetToken(describe(err));
      return;
    }
    const text = describe(err);
    if (where) {
      where.replaceChildren(el("p", { class: "error" }, text));
      where.hidden = false;
    } else {
      banner(text);
    }
  }

  function banner(text) {
    const node = $("banner");
    node.textContent = text;
    node.className = "error";
    node.hidden = !text;
  }

  // ---- token handling ------------------------------------------------------

  function showLogin(message) {
    $("content").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("token-input").focus();
  }

  function forgetToken(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    stopPolling();
    $("forget-token").hidden = true;
    $("whoami").textContent = "";
    showLogin(message);
  }

  async function enter() {
    let me;
    try {
      me = await api("v1/whoami");
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        forgetToken(`Token refused. ${describe(err)}`);
      } else {
        report(err);
      }
      return;
    }
    state.canWrite = me.scopes.includes("write");
    $("whoami").textContent = state.token
      ? `token ${me.name}${state.canWrite ? "" : " (read-only)"}`
      : "auth off";
    $("forget-token").hidden = !state.token;
    $("login").hidden = true;
    $("content").hidden = false;
    banner("");
    await loadAll();
  }

  // ---- plots ---------------------------------------------------------------

  function ticks(lo, hi, count = 5) {
    const span = hi - lo || Math.abs(hi) || 1;
    const raw = span / count;
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    const norm = raw / magnitude;
    const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
      out.push(Number(t.toPrecision(12)));
    }
    return out;
  }

  function extent(values) {
    let lo = Math.min(...values);
    let hi = Math.max(...values);
    if (lo === hi) {
      const pad = Math.abs(lo) * 0.1 || 1;
      lo -= pad;
      hi += pad;
    }
    const pad = (hi - lo) * 0.06;
    return [lo - pad, hi + pad];
  }

  // series: [{points: [{x, y, cls, title, attrs, onclick}], line: "none"|"step"|"straight"}]
  // vline: {x, label} drawn across the plot; diagonal: draw y = x.
  function chart({ series, xLabel, yLabel, vline, diagonal, id }) {
    const width = 680;
    const height = 380;
    const margin = { left: 64, right: 20, top: 16, bottom: 46 };
    const all = series.flatMap((s) => s.points);
    const xs = all.map((p) => p.x);
    const ys = all.map((p) => p.y);
    if (vline) xs.push(vline.x);
    if (diagonal) {
      const both = xs.concat(ys);
      xs.splice(0, xs.length, ...both);
      ys.splice(0, ys.length, ...both);
    }
    const [x0, x1] = extent(xs);
    const [y0, y1] = extent(ys);
    const px = (x) => margin.left + ((x - x0) / (x1 - x0)) * (width - margin.left - margin.right);
    const py = (y) => height - margin.bottom - ((y - y0) / (y1 - y0)) * (height - margin.top - margin.bottom);

    const root = svg("svg", {
      class: "chart", id, viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    });
    for (const t of ticks(x0, x1)) {
      root.append(svg("line", { class: "grid", x1: px(t), x2: px(t), y1: margin.top, y2: height - margin.bottom }));
      root.append(svg("text", { x: px(t), y: height - margin.bottom + 16, "text-anchor": "middle" }, fmt(t)));
    }
    for (const t of ticks(y0, y1)) {
      root.append(svg("line", { class: "grid", x1: margin.left, x2: width - margin.right, y1: py(t), y2: py(t) }));
      root.append(svg("text", { x: margin.left - 6, y: py(t) + 4, "text-anchor": "end" }, fmt(t)));
    }
    root.append(svg("line", { class: "axis", x1: margin.left, x2: width - margin.right, y1: height - margin.bottom, y2: height - margin.bottom }));
    root.append(svg("line", { class: "axis", x1: margin.left, x2: margin.left, y1: margin.top, y2: height - margin.bottom }));
    root.append(svg("text", { x: (margin.left + width - margin.right) / 2, y: height - 8, "text-anchor": "middle" }, xLabel));
    root.append(svg("text", {
      x: 14, y: (margin.top + height - margin.bottom) / 2, "text-anchor": "middle",
      transform: `rotate(-90 14 ${(margin.top + height - margin.bottom) / 2})`,
    }, yLabel));

    if (diagonal) {
      const lo = Math.max(x0, y0);
      const hi = Math.min(x1, y1);
      root.append(svg("line", { class: "diagonal", x1: px(lo), y1: py(lo), x2: px(hi), y2: py(hi) }));
    }
    if (vline) {
      root.append(svg("line", { class: "budget-line", x1: px(vline.x), x2: px(vline.x), y1: margin.top, y2: height - margin.bottom }));
      // The label sits on the side of the line with room for it.
      const right = px(vline.x) > width - margin.right - 110;
      root.append(svg("text", {
        class: "budget-label", x: px(vline.x) + (right ? -4 : 4), y: margin.top + 12,
        "text-anchor": right ? "end" : "start",
      }, vline.label));
    }
    for (const s of series) {
      if (s.line && s.line !== "none" && s.points.length > 1) {
        let d = "";
        s.points.forEach((p, i) => {
          if (i === 0) d += `M${px(p.x)},${py(p.y)}`;
          else if (s.line === "step") d += `H${px(p.x)}V${py(p.y)}`;
          else d += `L${px(p.x)},${py(p.y)}`;
        });
        root.append(svg("path", { class: "series-line", d }));
      }
      if (s.markers === false) continue;
      for (const p of s.points) {
        const dot = svg("circle", Object.assign({ cx: px(p.x), cy: py(p.y), r: p.r || 5, class: p.cls }, p.attrs || {}));
        if (p.title) dot.append(svg("title", {}, p.title));
        if (p.onclick) dot.addEventListener("click", p.onclick);
        root.append(dot);
      }
    }
    return root;
  }

  // ---- tables --------------------------------------------------------------

  function fillTable(table, headers, rows, onSelect) {
    const head = el("tr", {}, headers.map((h) => el("th", {}, h)));
    const body = rows.map(({ cells, key }) => {
      const tr = el("tr", { class: onSelect ? "clickable" : null, "data-key": key },
        cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c))));
      if (onSelect) {
        tr.addEventListener("click", () => {
          for (const other of table.querySelectorAll("tr.selected")) other.classList.remove("selected");
          tr.classList.add("selected");
          onSelect(key);
        });
      }
      return tr;
    });
    table.replaceChildren(el("thead", {}, head), el("tbody", {}, body));
  }

  const num = (value) => el("td", { class: "num" }, fmt(value));

  // A latency model's stored quality, in words: measured on the extra
  // measurements by the model fitted on the references only (held out).
  function latencyQuality(m) {
    const parts = [];
    if (typeof m.spearman_rho === "number") parts.push(`Spearman ρ ${fmt(m.spearman_rho, 3)}`);
    if (typeof m.kendall_tau === "number") parts.push(`Kendall τ ${fmt(m.kendall_tau, 3)}`);
    if (typeof m.mape === "number") parts.push(`MAPE ${fmt(m.mape * 100, 3)} %`);
    if (typeof m.within_10pct === "number") parts.push(`within ±10 % ${fmt(m.within_10pct * 100, 3)} %`);
    if (typeof m.rmse === "number") parts.push(`RMSE ${fmt(m.rmse, 3)} ms`);
    if (!parts.length) return "no held-out measurements";
    return `${parts.join(", ")} on ${fmt(m.n_extra ?? m.n)} held-out`;
  }

  function metricsList(metrics) {
    const items = Object.entries(metrics || {}).filter(([, v]) => typeof v === "number");
    if (!items.length) return "–";
    return items.map(([k, v]) => `${k} ${fmt(v, 3)}`).join(", ");
  }

  // ---- loading -------------------------------------------------------------

  async function loadAll() {
    try {
      const [supernets, devices, jobs] = await Promise.all([
        api("v1/supernets"), api("v1/devices"), api("v1/searches?limit=200"),
      ]);
      state.supernets = supernets;
      state.devices = devices;
      state.jobs = jobs;
    } catch (err) {
      report(err);
      return;
    }
    renderSupernets();
    renderDevices();
    renderJobs();
    fillParetoControls();
    await showPareto();
    schedulePoll();
  }

  // ---- Pareto front --------------------------------------------------------

  function fillParetoControls() {
    const supernetSelect = $("pareto-supernet");
    const deviceSelect = $("pareto-device");
    supernetSelect.replaceChildren(...state.supernets.map((s) => el("option", { value: s.name }, s.name)));
    deviceSelect.replaceChildren(...state.devices.map((d) => el("option", { value: d.name }, d.name)));
    // Start where the user last searched: the newest job's supernet, device and budget.
    const job = state.jobs[0];
    if (job && job.spec) {
      if (state.supernets.some((s) => s.name === job.spec.supernet)) supernetSelect.value = job.spec.supernet;
      if (state.devices.some((d) => d.name === job.spec.device)) deviceSelect.value = job.spec.device;
      if (job.spec.latency_budget_ms) $("budget-input").value = job.spec.latency_budget_ms;
    }
  }

  async function showPareto() {
    const supernet = $("pareto-supernet").value;
    const device = $("pareto-device").value;
    const status = $("pareto-status");
    const plot = $("pareto-plot");
    $("subnet-details").hidden = true;
    $("best-answer").replaceChildren();
    plot.replaceChildren();
    if (!supernet || !device) {
      status.textContent = "Register a supernet and a device to see a front.";
      return;
    }
    const budgetText = $("budget-input").value.trim();
    const budget = budgetText === "" ? null : Number(budgetText);
    if (budget !== null && !(budget > 0)) {
      status.textContent = "";
      report(new Error("The budget must be a positive number of milliseconds."), $("best-answer"));
      return;
    }
    const where = `supernet=${encodeURIComponent(supernet)}&device=${encodeURIComponent(device)}`;
    let front;
    let best = null;
    try {
      front = (await api(`v1/query/pareto?${where}`)).front;
      if (budget !== null) best = await api(`v1/query/best?${where}&budget_ms=${budget}`);
    } catch (err) {
      status.textContent = "";
      report(err, $("best-answer"));
      return;
    }
    if (!front.length) {
      status.textContent = `No evaluated subnets of ${supernet} with a latency on ${device} yet: run a search.`;
      return;
    }
    status.textContent = `${front.length} non-dominated subnets of ${supernet} on ${device}. Click a point for its subnet.`;
    const bestId = best && best.best ? best.best.trial_id : null;
    const points = front.map((c) => ({
      x: c.latency_ms,
      y: c.accuracy,
      cls: ["front-point", c.trial_id === bestId ? "best" : "", budget !== null && c.latency_ms > budget ? "over-budget" : ""].join(" ").trim(),
      title: `accuracy ${fmt(c.accuracy)} (${c.accuracy_source}), ${fmt(c.latency_ms)} ms (${c.latency_source})`,
      attrs: { "data-trial-id": c.trial_id },
      onclick: (event) => selectSubnet(supernet, device, c, event.currentTarget),
    }));
    plot.replaceChildren(chart({
      id: "pareto-chart",
      series: [{ points, line: "step" }],
      xLabel: `latency on ${device} (ms)`,
      yLabel: "accuracy (%)",
      vline: budget !== null ? { x: budget, label: `budget ${fmt(budget)} ms` } : null,
    }));
    if (best) renderBest(best);
  }

  function renderBest(answer) {
    const box = $("best-answer");
    if (answer.best) {
      const b = answer.best;
      box.replaceChildren(el("p", { id: "best-text" },
        `Best within ${fmt(answer.budget_ms)} ms: accuracy ${fmt(b.accuracy)} `,
        el("span", { class: "source" }, `(${b.accuracy_source})`),
        ` at ${fmt(b.latency_ms)} ms `,
        el("span", { class: "source" }, `(${b.latency_source})`),
        `, trial ${b.trial_id} (green point).`));
    } else {
      const closest = answer.closest.map((c) => `${fmt(c.latency_ms)} ms (accuracy ${fmt(c.accuracy)})`).join(", ");
      box.replaceChildren(el("p", { id: "best-text", class: "error" },
        `Nothing evaluated meets ${fmt(answer.budget_ms)} ms. Closest: ${closest || "none"}.`));
    }
  }

  function selectSubnet(supernet, device, c, dot) {
    for (const other of document.querySelectorAll("#pareto-chart circle.chosen")) other.classList.remove("chosen");
    if (dot) dot.classList.add("chosen");
    const box = $("subnet-details");
    const record = state.supernets.find((s) => s.name === supernet);
    const reasons = [];
    if (record && !record.checkpoint_path) reasons.push(`${supernet} is a tabular benchmark: it has no weights to export.`);
    if (!state.canWrite) reasons.push("This token is read-only: exporting needs a token with the write scope.");
    const exportNote = reasons.length ? reasons.join(" ") : null;
    const button = el("button", {
      type: "button", id: "export-button", disabled: exportNote !== null, title: exportNote,
      onclick: () => exportSubnet(supernet, c),
    }, "Export weights (ONNX, TorchScript, state_dict)");
    box.replaceChildren(
      el("h3", {}, `Subnet of trial ${c.trial_id}`),
      el("dl", {},
        el("dt", {}, "accuracy"),
        el("dd", { id: "detail-accuracy" }, `${fmt(c.accuracy, 6)} % `, el("span", { class: "source" }, sourceText(c.accuracy_source))),
        el("dt", {}, "latency"),
        el("dd", { id: "detail-latency" }, `${fmt(c.latency_ms, 6)} ms on ${device} `, el("span", { class: "source" }, sourceText(c.latency_source))),
        el("dt", {}, "search job"),
        el("dd", {}, c.job_id === null ? "–" : String(c.job_id)),
        el("dt", {}, "arch hash"),
        el("dd", {}, c.arch_hash)),
      el("pre", { id: "detail-arch" }, JSON.stringify(c.arch, null, 2)),
      // A disabled button shows no tooltip in every browser: the wrapper carries it too.
      el("span", { title: exportNote }, button),
      exportNote ? el("span", { class: "source", id: "export-note" }, " " + exportNote) : null,
      el("p", { id: "export-status", class: "status" }),
    );
    box.hidden = false;
  }

  async function exportSubnet(supernet, c) {
    const status = $("export-status");
    const button = $("export-button");
    button.disabled = true;
    status.textContent = "Exporting: recalibrating batch norm and writing the files can take a minute…";
    try {
      const response = await api(`v1/supernets/${encodeURIComponent(supernet)}/export`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ trial_id: c.trial_id }),
        raw: true,
      });
      const blob = await response.blob();
      const name = `${supernet}-trial-${c.trial_id}.zip`;
      const link = el("a", { href: URL.createObjectURL(blob), download: name }, `Download ${name}`);
      status.replaceChildren("Exported: ", link);
      link.click();
    } catch (err) {
      status.replaceChildren(el("span", { class: "error" }, `Export failed. ${describe(err)}`));
    } finally {
      button.disabled = false;
    }
  }

  // ---- search jobs ---------------------------------------------------------

  function renderJobs() {
    // Rebuilding an unchanged table every poll would only make rows flicker
    // (and swallow a click landing mid-rebuild).
    const snapshot = JSON.stringify(state.jobs);
    if (snapshot === state.jobsShown) return;
    state.jobsShown = snapshot;
    fillTable($("searches-table"),
      ["id", "name", "state", "progress", "evaluations", "supernet", "device", "budget (ms)", "owner", "created"],
      state.jobs.map((j) => ({
        key: j.id,
        cells: [j.id, j.name, j.state, el("progress", { max: 1, value: j.progress }),
          num(j.n_evaluations), j.spec.supernet, j.spec.device, num(j.spec.latency_budget_ms),
          j.owner, when(j.created_at)],
      })),
      (id) => selectJob(Number(id)));
    if (state.selectedJob !== null) {
      const row = $("searches-table").querySelector(`tr[data-key="${state.selectedJob}"]`);
      if (row) row.classList.add("selected");
    }
  }

  async function selectJob(id) {
    state.selectedJob = id;
    await refreshJob();
    schedulePoll();
  }

  async function readTrials(id) {
    const known = state.trials.get(id) || [];
    // Trials only grow: ask for the ones after the last we have.
    for (;;) {
      const after = known.length ? `&after_id=${known[known.length - 1].id}` : "";
      const page = await api(`v1/searches/${id}/trials?limit=1000${after}`);
      known.push(...page);
      if (page.length < 1000) break;
    }
    state.trials.set(id, known);
    return known;
  }

  function feasible(trial, spec) {
    if (trial.accuracy === null) return false;
    if (spec.latency_budget_ms !== null && spec.latency_budget_ms !== undefined) {
      if (trial.latency_ms === null || trial.latency_ms > spec.latency_budget_ms) return false;
    }
    for (const [device, ms] of Object.entries(spec.extra_budgets_ms || {})) {
      const seen = trial.latencies[device];
      if (!seen || typeof seen.ms !== "number" || seen.ms > ms) return false;
    }
    return true;
  }

  async function refreshJob() {
    const id = state.selectedJob;
    const box = $("search-detail");
    let job;
    let trials;
    try {
      job = await api(`v1/searches/${id}`);
      trials = await readTrials(id);
    } catch (err) {
      report(err, box);
      return;
    }
    const index = state.jobs.findIndex((j) => j.id === job.id);
    if (index >= 0) state.jobs[index] = job;
    renderJobs();

    const spec = job.spec;
    let bestSoFar = null;
    const curve = [];
    const dots = [];
    trials.forEach((t, i) => {
      const ok = feasible(t, spec);
      if (ok && (bestSoFar === null || t.accuracy > bestSoFar)) bestSoFar = t.accuracy;
      if (bestSoFar !== null) curve.push({ x: i + 1, y: bestSoFar });
      if (t.accuracy !== null) {
        dots.push({
          x: i + 1, y: t.accuracy, r: 3.5, cls: ok ? "trial feasible" : "trial",
          title: `evaluation ${i + 1}: accuracy ${fmt(t.accuracy)}, ${fmt(t.latency_ms)} ms${ok ? "" : " (over budget)"}`,
        });
      }
    });
    const budget = spec.latency_budget_ms === null ? "no latency budget" : `${fmt(spec.latency_budget_ms)} ms on ${spec.device}`;
    const children = [
      el("h3", {}, `Job ${job.id} (${job.name}): ${job.state}`),
      el("p", {}, el("progress", { max: 1, value: job.progress, id: "job-progress" }),
        ` ${Math.round(job.progress * 100)} %, ${job.n_evaluations} real evaluations; ${spec.supernet}, ${budget}`),
    ];
    if (job.result && job.result.message) children.push(el("p", {}, job.result.message));
    if (job.error) children.push(el("p", { class: "error" }, job.error));
    if (dots.length) {
      children.push(chart({
        id: "progress-chart",
        series: [{ points: dots, line: "none" }, { points: curve, line: "step", markers: false }],
        xLabel: "real evaluations",
        yLabel: "accuracy (%)",
      }));
      children.push(el("p", { class: "legend" },
        el("span", {}, "line: best feasible accuracy so far"),
        el("span", {}, "blue dots: within the budget"),
        el("span", {}, "grey dots: over it")));
    } else {
      children.push(el("p", { class: "status" }, "No evaluations yet."));
    }
    box.replaceChildren(...children);
    box.hidden = false;
  }

  const active = (job) => job.state === "queued" || job.state === "running";

  function stopPolling() {
    if (state.pollTimer !== null) clearTimeout(state.pollTimer);
    state.pollTimer = null;
  }

  // Polls only while something can still change: a queued or running job.
  function schedulePoll() {
    stopPolling();
    if (!state.jobs.some(active)) return;
    state.pollTimer = setTimeout(refreshJobs, POLL_MS);
  }

  async function refreshJobs() {
    try {
      state.jobs = await api("v1/searches?limit=200");
    } catch (err) {
      report(err);
      return;
    }
    renderJobs();
    if (state.selectedJob !== null) await refreshJob();
    schedulePoll();
  }

  // ---- devices -------------------------------------------------------------

  function renderDevices() {
    fillTable($("devices-table"), ["name", "kind", "batch", "backend", "description"],
      state.devices.map((d) => ({
        key: d.name, cells: [d.name, d.kind, num(d.batch_size), d.backend || "–", d.description],
      })),
      (name) => selectDevice(name));
  }

  async function selectDevice(name) {
    const box = $("device-detail");
    const device = state.devices.find((d) => d.name === name);
    let models;
    try {
      models = await api(`v1/devices/${encodeURIComponent(name)}/models`);
    } catch (err) {
      report(err, box);
      return;
    }
    const children = [el("h3", {}, `Device ${name}`)];
    if (device && device.kind === "table") {
      children.push(el("p", {}, "Latencies come from a bundled benchmark table: every number is a measurement, no model is fitted."));
    }
    if (models.length) {
      const table = el("table", { id: "models-table" });
      fillTable(table, ["version", "space", "fitted on", "quality (held-out measurements)", "created"],
        models.map((m) => ({
          key: m.version,
          cells: [m.version, m.space_name, `${m.n_train} references${m.metrics.refit_with_extra ? " + the others" : ""}`, latencyQuality(m.metrics), when(m.created_at)],
        })));
      children.push(el("h4", {}, "Latency models"), table);
    } else if (!device || device.kind !== "table") {
      children.push(el("p", { class: "status" }, "No latency model yet: measure or submit latencies for this device."));
    }
    const spaces = new Set(models.map((m) => m.space_name));
    if (device && device.kind === "table" && device.properties && device.properties.table) spaces.add(device.properties.table);
    const usable = state.supernets.filter((s) => spaces.has(s.space_name));
    if (usable.length) {
      const select = el("select", { id: "fit-supernet" }, usable.map((s) => el("option", { value: s.name }, s.name)));
      const plotBox = el("div", { id: "latency-fit", class: "plot" });
      const note = (supernetName) => {
        const space = (state.supernets.find((x) => x.name === supernetName) || {}).space_name;
        const model = models.find((m) => m.space_name === space);
        return model ? model.metrics : null;
      };
      select.addEventListener("change", () => drawFit(name, select.value, plotBox, note(select.value)));
      children.push(el("h4", {}, "Predicted vs measured"),
        el("label", { class: "controls" }, "Supernet ", select), plotBox);
      box.replaceChildren(...children);
      box.hidden = false;
      await drawFit(name, select.value, plotBox, note(select.value));
    } else {
      box.replaceChildren(...children);
      box.hidden = false;
    }
  }

  // ``metrics``: the newest model's stored quality for this space (null for a table).
  async function drawFit(device, supernet, box, metrics) {
    let fit;
    try {
      fit = await api(`v1/devices/${encodeURIComponent(device)}/latency-fit?supernet=${encodeURIComponent(supernet)}`);
    } catch (err) {
      report(err, box);
      return;
    }
    if (!fit.points.length) {
      box.replaceChildren(el("p", { class: "status" }, `No latencies of ${fit.space} stored for ${device}.`));
      return;
    }
    const points = fit.points.map((p) => ({
      x: p.measured_ms,
      y: p.predicted_ms,
      cls: p.is_reference ? "reference" : "other",
      title: `${p.arch_hash.slice(0, 10)}: measured ${fmt(p.measured_ms)} ms, predicted ${fmt(p.predicted_ms)} ms${p.is_reference ? " (reference)" : ""}`,
    }));
    const references = fit.points.filter((p) => p.is_reference).length;
    // The stored model may be refitted on every measurement: then no point here
    // is held out, and the honest quality is the stored one (the table above).
    const fitted = fit.source === "table"
      ? "The table's latencies are measurements themselves."
      : metrics && metrics.refit_with_extra
        ? "The stored model was fitted on all of these; its held-out quality is in the table above."
        : "The stored model was fitted on the references; the others are held out.";
    box.replaceChildren(
      chart({ id: "fit-chart", series: [{ points, line: "none" }], xLabel: "measured (ms)", yLabel: `predicted by the ${fit.source} (ms)`, diagonal: true }),
      el("p", { class: "legend" },
        el("span", {}, `${fit.points.length} measurements of ${fit.space}`),
        el("span", {}, `orange: ${references} references`),
        el("span", {}, `blue: ${fit.points.length - references} others`),
        el("span", {}, "dashed: predicted = measured")),
      el("p", { class: "status" }, fitted),
    );
  }

  // ---- supernets -----------------------------------------------------------

  function renderSupernets() {
    fillTable($("supernets-table"), ["name", "space", "status", "classes", "metrics", "created"],
      state.supernets.map((s) => ({
        key: s.name,
        cells: [s.name, s.space_name, s.status, s.n_classes === null ? "–" : s.n_classes, metricsList(s.metrics), when(s.created_at)],
      })),
      (name) => selectSupernet(name));
  }

  async function selectSupernet(name) {
    const box = $("supernet-detail");
    const supernet = state.supernets.find((s) => s.name === name);
    let predictors;
    try {
      predictors = await api(`v1/supernets/${encodeURIComponent(name)}/predictors`);
    } catch (err) {
      report(err, box);
      return;
    }
    const children = [
      el("h3", {}, `Supernet ${name}`),
      el("dl", {},
        el("dt", {}, "space"), el("dd", {}, supernet.space_name),
        el("dt", {}, "dataset"), el("dd", {}, JSON.stringify(supernet.dataset)),
        el("dt", {}, "checkpoint"), el("dd", {}, supernet.checkpoint_path || "none (tabular benchmark)")),
    ];
    if (predictors.length) {
      const table = el("table");
      fillTable(table, ["version", "fitted on", "quality", "created"],
        predictors.map((p) => ({ key: p.version, cells: [p.version, `${p.n_train} subnets`, metricsList(p.metrics), when(p.created_at)] })));
      children.push(el("h4", {}, "Accuracy predictors"), table);
    } else {
      children.push(el("p", { class: "status" }, "No accuracy predictor stored."));
    }
    box.replaceChildren(...children);
    box.hidden = false;
  }

  // ---- wiring --------------------------------------------------------------

  function showTab(name) {
    // Jobs submitted elsewhere since the last look show up when the tab opens.
    if (name === "searches" && !$("content").hidden) refreshJobs();
    for (const button of document.querySelectorAll("#tabs button")) {
      button.classList.toggle("active", button.dataset.tab === name);
    }
    for (const section of document.querySelectorAll("section.tab")) {
      section.hidden = section.id !== `tab-${name}`;
    }
  }

  async function start() {
    for (const button of document.querySelectorAll("#tabs button")) {
      button.addEventListener("click", () => showTab(button.dataset.tab));
    }
    $("pareto-form").addEventListener("submit", (event) => {
      event.preventDefault();
      showPareto();
    });
    $("pareto-supernet").addEventListener("change", showPareto);
    $("pareto-device").addEventListener("change", showPareto);
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token-input").value.trim();
      if (!token) {
        $("login-error").textContent = "Enter a token (hwnas token create NAME prints one).";
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, token);
      state.token = token;
      $("token-input").value = "";
      enter();
    });
    $("forget-token").addEventListener("click", () => forgetToken(""));

    let settings;
    try {
      settings = await (await fetch("dashboard/settings.json")).json();
    } catch (err) {
      banner(`Cannot reach the hwnas server: ${describe(err)}`);
      return;
    }
    // Ask for a token before the first call rather than provoking a 401.
    if (settings.require_auth && !state.token) {
      showLogin("");
      return;
    }
    await enter();
  }

  document.addEventListener("DOMContentLoaded", start);
})();

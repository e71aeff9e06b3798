// automl web page: every view is drawn from the REST API (/api/v1) with the user's token.
// Plain JavaScript, no library: the page must run offline with no build step. Text from the
// API is only ever set with textContent / attributes (never innerHTML), so nothing is injected.
"use strict";

const API = "/api/v1";
const POLL_MS = 1000;
const TERMINAL = ["SUCCEEDED", "FAILED", "CANCELED"];
// The HTML report's outcome colours (html_report.py STATUS_COLORS), except running: blue here,
// as a live search is mostly running trials (each curve also carries its trial's number).
const OUTCOME_COLORS = {
  completed: "#2ca02c", recovered: "#17becf", failed: "#d62728", stopped: "#ff7f0e",
  running: "#1f6fd1", paused: "#9467bd", pending: "#c7c7c7",
};
// The submit form's fields, by the request key each sets: errors name the field as it reads.
const FORM_WORDS = {
  skill: "skill", algo: "algorithm", max_recommendations: "trials", max_epochs: "max epochs",
  max_concurrent: "at once", metric: "metric", direction: "direction", overrides: "overrides",
  data: "data inputs",
};
const HANDOFF_ACTIONS = ["evaluate", "export", "inference", "quantize"];

let timer = null;  // the current view's poll
let notice = "";  // a line for the next view (what the server ignored of a submitted study)

// -- helpers --------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children) el.append(child);
  return el;
}

function fmt(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number" && !Number.isInteger(value)) return value.toPrecision(4);
  return String(value);
}

function age(seconds) {
  const s = Math.max(0, Date.now() / 1000 - seconds);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

function outcome(trial) {
  return trial.failure_class ? `${trial.status}: ${trial.failure_class}` : trial.status;
}

function dot(status) {
  return h("span", { class: "dot", style: `background:${OUTCOME_COLORS[status] || "#444"}` });
}

function token() { return sessionStorage.getItem("automl-token"); }

class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && path !== "/me") { signOut(); throw new ApiError(401, "sign in again"); }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, explain(data));
  return data;
}

function explain(data) {
  const detail = data && data.detail;
  if (Array.isArray(detail)) return detail.map((d) => `${fieldName((d.loc || []).slice(1))}: ${d.msg}`).join("\n");
  return detail || "request failed";
}

// An error's location in the form's words: "trials", "data input dataset.train_dir", or the
// study's own key ("study.max_epochs") for a pasted study.
function fieldName(loc) {
  const [head, ...rest] = String(loc.join(".")).split(".");
  if (head === "data" && rest.length) return `data input ${rest.join(".")}`;
  if (head === "overrides" && rest.length) return `overrides ${rest.join(".")}`;
  return head in FORM_WORDS && !rest.length ? FORM_WORDS[head] : loc.join(".");
}

function show(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes.filter(Boolean));
}

// -- routing --------------------------------------------------------------------------------

function route() {
  clearInterval(timer);
  timer = null;
  if (!token()) return loginView();
  document.getElementById("logout").hidden = false;
  const match = location.hash.match(/^#\/experiments\/([\w-]+)$/);
  return match ? experimentView(match[1]) : listView();
}

function signOut() {
  sessionStorage.removeItem("automl-token");
  document.getElementById("who").textContent = "";
  document.getElementById("logout").hidden = true;
  route();
}

// -- login ----------------------------------------------------------------------------------

function loginView() {
  const error = h("p", { id: "login-error", class: "error" });
  const input = h("input", { id: "token", type: "password", size: 48, autocomplete: "off",
                             placeholder: "a token from `automl token create`", required: true });
  const form = h("form", { id: "login" },
    h("h2", {}, "Sign in"),
    h("p", { class: "muted" }, "Paste your API token. It is kept in this browser tab only (session storage)."),
    h("label", {}, "Token ", input), h("button", { type: "submit" }, "Sign in"), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem("automl-token", input.value.trim());
    try {
      await whoAmI();
      route();
    } catch (err) {
      sessionStorage.removeItem("automl-token");
      error.textContent = err.status === 401 ? "That token is not valid (missing, wrong or revoked)." : String(err.message);
    }
  });
  show(form);
  input.focus();
}

async function whoAmI() {
  const me = await api("GET", "/me");
  document.getElementById("who").textContent = `${me.name}${me.is_admin ? " (admin)" : ""}`;
  return me;
}

// -- experiments list -----------------------------------------------------------------------

function listView() {
  const filter = h("input", { id: "filter", type: "search", placeholder: "filter: name, owner, algorithm, id" });
  const stateFilter = h("select", { id: "state-filter" }, h("option", { value: "" }, "any state"),
    ["PENDING", "RUNNING", "PAUSED", "SUCCEEDED", "FAILED", "CANCELED"].map((s) => h("option", { value: s }, s)));
  const body = h("tbody");
  const table = h("table", { id: "experiments" }, h("thead", {}, h("tr", {},
    ["experiment", "state", "owner", "algorithm", "trials done/total", "epochs spent/at most",
     "best", "age"].map((c) => h("th", {}, c)))), body);
  const error = h("p", { class: "error", id: "list-error" });
  let rows = [];
  const draw = () => {
    const text = filter.value.trim().toLowerCase();
    body.replaceChildren(...rows.filter((e) =>
      (!stateFilter.value || e.state === stateFilter.value) &&
      (!text || [e.name, e.owner, e.algorithm, e.id].some((v) => v.toLowerCase().includes(text))))
      .map(experimentRow));
  };
  filter.addEventListener("input", draw);
  stateFilter.addEventListener("change", draw);
  const refresh = async () => {
    try {
      rows = (await api("GET", "/experiments?size=200")).experiments;
      error.textContent = "";
      draw();
    } catch (err) { error.textContent = err.message; }
  };
  show(h("h2", {}, "Experiments"), h("div", { class: "actions" }, filter, stateFilter), error, table,
       submitForm());
  whoAmI().catch(() => {});
  refresh();
  timer = setInterval(refresh, 2 * POLL_MS);
}

function experimentRow(e) {
  const p = e.progress;
  const best = p.best ? `${fmt(p.best.score)} (${p.best.rec_id.slice(0, 8)})` : "–";
  return h("tr", { "data-id": e.id },
    h("td", {}, h("a", { href: `#/experiments/${e.id}` }, e.name), h("div", { class: "muted mono" }, e.id.slice(0, 8))),
    h("td", {}, h("span", { class: `state ${e.state}` }, e.state)),
    h("td", {}, e.owner), h("td", {}, e.algorithm),
    h("td", { class: "num" }, `${p.trials_done}/${p.trials_total}`),
    h("td", { class: "num" }, `${p.epochs_spent}/${fmt(fullBudget(p))}`),
    h("td", { class: "num" }, best), h("td", {}, age(e.created)));
}

// Epochs that every trial trained to the full budget would cost (the ceiling of a search).
function fullBudget(p) {
  return p.epoch_budget ? p.trials_total * p.epoch_budget : null;
}

function submitForm() {
  const error = h("p", { class: "error", id: "submit-error" });
  const skill = h("select", { id: "f-skill" });
  const algo = h("select", { id: "f-algo" });
  const num = (id, placeholder) => h("input", { id, type: "number", min: 1, placeholder, style: "width:6em" });
  const fields = {
    max_recommendations: num("f-max-recommendations", "20"), max_epochs: num("f-max-epochs", "skill"),
    max_concurrent: num("f-max-concurrent", "auto"),
  };
  const metric = h("input", { id: "f-metric", size: 14 });
  const direction = h("select", { id: "f-direction" });
  const data = h("div", { id: "f-data" });
  const overrides = h("textarea", { id: "f-overrides", rows: 2, placeholder: "spec overrides, one KEY=VALUE a line (train.optim.lr=0.0001)" });
  const study = h("textarea", { id: "study", rows: 7, placeholder: "algo: asha\nmax_recommendations: 9\nmax_epochs: 9\noverrides:\n  train.batch_size: 4" });
  let skills = [];
  // The chosen skill's own defaults and data inputs (GET /skills), redrawn when it changes.
  const drawSkill = () => {
    const s = skills.find((x) => x.name === skill.value);
    metric.placeholder = s && s.metric ? s.metric : "required: a KPI the trainer writes";
    direction.replaceChildren(h("option", { value: "" }, s && s.direction ? `network's (${s.direction})` : "by the metric's name"),
      h("option", { value: "max" }, "max"), h("option", { value: "min" }, "min"));
    const inputs = s ? s.inputs : [];
    data.replaceChildren(...inputs.map((i) => h("label", { class: "data-input" }, `${i.key} `,
      h("input", { "data-key": i.key, size: 40, class: "f-data-input",
        placeholder: s.bundled ? `empty: ${i.optional ? "none" : "a generated dataset (the embedded default)"}`
          : `${i.kind} path${i.optional ? " (optional)" : " (required)"}` }))));
    if (!inputs.length) data.append(h("span", { class: "muted" }, "this skill declares no data inputs"));
  };
  skill.addEventListener("change", drawSkill);
  // Both lists are filled at once, so a filled skill list means a filled algorithm list.
  Promise.all([api("GET", "/skills"), api("GET", "/algorithms")]).then(([skillList, algorithms]) => {
    skills = skillList;
    algo.replaceChildren(...algorithms.map((a) => h("option", { value: a.name, selected: a.default, title: a.search }, a.name)));
    skill.replaceChildren(...skills.map((s) => h("option", { value: s.name, selected: s.bundled },
      `${s.name}${s.network_arch ? ` (${s.network_arch})` : ""}${s.bundled ? ": the embedded default" : ""}`)));
    drawSkill();
  }).catch((err) => { error.textContent = err.message; });
  const submit = async (kind) => {
    error.textContent = "";
    try {
      let created;
      if (kind === "study") {
        created = await api("POST", "/experiments:study", { study: study.value });
      } else {
        const body = { skill: skill.value || null, algo: algo.value };
        for (const [key, input] of Object.entries(fields)) if (input.value) body[key] = Number(input.value);
        if (metric.value.trim()) body.metric = metric.value.trim();
        if (direction.value) body.direction = direction.value;
        const paths = [...data.querySelectorAll("input[data-key]")].filter((i) => i.value.trim());
        if (paths.length) body.data = Object.fromEntries(paths.map((i) => [i.dataset.key, i.value.trim()]));
        const pairs = overrides.value.split("\n").map((l) => l.trim()).filter(Boolean);
        if (pairs.length) body.overrides = Object.fromEntries(pairs.map(splitPair));
        created = await api("POST", "/experiments", body);
      }
      notice = created.ignored && created.ignored.length
        ? `The server ignored these keys of the study (it sets them itself): ${created.ignored.join(", ")}` : "";
      location.hash = `#/experiments/${created.id}`;
    } catch (err) { error.textContent = err.message; }
  };
  return h("div", { class: "panel", id: "submit" },
    h("h3", {}, "Submit an experiment"),
    h("div", {}, h("label", {}, "skill ", skill), h("label", {}, "algorithm ", algo),
      h("label", {}, "trials ", fields.max_recommendations), h("label", {}, "max epochs ", fields.max_epochs),
      h("label", {}, "at once ", fields.max_concurrent), h("label", {}, "metric ", metric),
      h("label", {}, "direction ", direction)),
    h("div", {}, h("span", { class: "muted" }, "data inputs: "), data),
    overrides,
    h("div", { class: "actions" }, h("button", { id: "submit-fields", type: "button", onclick: () => submit("fields") },
      "Submit these fields"), h("span", { class: "muted" }, "empty fields take the skill's defaults (the bundled skill: the embedded default)")),
    h("p", { class: "muted" }, "…or paste a study file (the keys of automl run --study; the server ignores the keys it sets itself, such as progress and workspace):"), study,
    h("div", { class: "actions" }, h("button", { id: "submit-study", type: "button", onclick: () => submit("study") },
      "Submit this study")),
    error);
}

function splitPair(line) {
  const at = line.indexOf("=");
  if (at < 1) throw new Error(`overrides "${line}": write KEY=VALUE`);
  const raw = line.slice(at + 1).trim();
  const number = Number(raw);
  const value = raw === "true" ? true : raw === "false" ? false : raw !== "" && !Number.isNaN(number) ? number : raw;
  return [line.slice(0, at).trim(), value];
}

// -- one experiment -------------------------------------------------------------------------

function experimentView(id) {
  const trials = new Map();  // rec_id -> trial, updated incrementally with ?after=
  let after = 0;
  let experiment = null;
  let finalPoll = false;
  const els = {
    title: h("h2", { id: "title" }, "Experiment"), summary: h("div", { id: "summary" }),
    error: h("p", { class: "error", id: "experiment-error" }), actions: h("div", { class: "actions" }),
    best: h("div", { id: "best" }), curves: h("div", { id: "curves-box" }), rungs: h("div", { id: "rungs" }),
    lineage: h("div", { id: "lineage" }), trials: h("div", { id: "trials-box" }),
    handoff: h("div", { id: "handoff-result", class: "mono" }),
  };
  const shown = notice;
  notice = "";
  show(h("p", {}, h("a", { href: "#/" }, "← all experiments")), els.title, els.summary,
    shown ? h("p", { class: "muted", id: "notice" }, shown) : null, els.error,
    els.actions, els.handoff,
    h("div", { class: "grid" },
      h("div", {}, h("h3", {}, "Learning curves"), els.curves),
      h("div", {}, h("h3", {}, "Best trial so far"), els.best)),
    els.rungs, els.lineage, h("h3", {}, "Trials"), els.trials);
  const poll = async () => {
    try {
      experiment = await api("GET", `/experiments/${id}`);
      const changed = await api("GET", `/experiments/${id}/trials?after=${after}`);
      for (const trial of changed.trials) trials.set(trial.rec_id, trial);
      after = changed.last_version;
      els.error.textContent = "";
      drawExperiment(experiment, [...trials.values()].sort((a, b) => a.index - b.index), els);
      if (TERMINAL.includes(experiment.state)) {
        if (finalPoll) clearInterval(timer);
        finalPoll = true;  // one more poll picks up the trials written as it ended
      }
    } catch (err) {
      els.error.textContent = err.status === 403 ? `403 Forbidden: ${err.message.slice(5)}` : err.message;
      if (err.status === 403 || err.status === 404) clearInterval(timer);
    }
  };
  whoAmI().catch(() => {});
  poll();
  timer = setInterval(poll, POLL_MS);
  drawActions(id, els);
}

function drawActions(id, els) {
  const act = (verb) => async () => {
    els.error.textContent = "";
    try { await api("POST", `/experiments/${id}:${verb}`); } catch (err) { els.error.textContent = err.message; }
  };
  const action = h("select", { id: "handoff-action" }, HANDOFF_ACTIONS.map((a) => h("option", { value: a }, a)));
  const handoff = async () => {
    els.error.textContent = "";
    try {
      const out = await api("POST", `/experiments/${id}:handoff`, { action: action.value });
      els.handoff.replaceChildren(h("div", {}, `${out.action} spec for trial ${out.rec_id}: ${out.spec_path}`),
        h("div", {}, `checkpoint: ${out.checkpoint}`), h("div", {}, `run it: ${out.command.join(" ")}`));
    } catch (err) { els.error.textContent = err.message; }
  };
  const report = h("button", { id: "report", type: "button", onclick: () => openReport(id, els) }, "HTML report");
  els.mlflow = h("span", { id: "mlflow" });
  els.actions.replaceChildren(
    ...["cancel", "pause", "resume"].map((verb) => h("button", { id: verb, type: "button", onclick: act(verb) },
      verb[0].toUpperCase() + verb.slice(1))),
    h("span", { class: "spacer" }), action, h("button", { id: "handoff", type: "button", onclick: handoff }, "Hand off"),
    report, els.mlflow);
}

// The report needs the token, so it is fetched here and opened as a page of its own, its
// figures fetched the same way and inlined as blob: URLs.
async function openReport(id, els) {
  const win = window.open("", "_blank");
  try {
    const response = await fetch(`${API}/experiments/${id}/report`, { headers: { Authorization: `Bearer ${token()}` } });
    if (!response.ok) throw new ApiError(response.status, explain(await response.json().catch(() => null)));
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const img of doc.querySelectorAll("img[src]")) {
      const figure = await fetch(`${API}/experiments/${id}/report/${encodeURIComponent(img.getAttribute("src"))}`,
        { headers: { Authorization: `Bearer ${token()}` } });
      if (figure.ok) img.setAttribute("src", URL.createObjectURL(await figure.blob()));
    }
    const page = new Blob(["<!DOCTYPE html>\n" + doc.documentElement.outerHTML], { type: "text/html" });
    if (win) win.location = URL.createObjectURL(page);
  } catch (err) {
    if (win) win.close();
    els.error.textContent = `report: ${err.message}`;
  }
}

function drawExperiment(e, trials, els) {
  const p = e.progress;
  els.title.replaceChildren(`${e.name} `, h("span", { class: `state ${e.state}`, id: "state" }, e.state));
  els.summary.replaceChildren(h("div", { class: "muted" },
    `${e.algorithm} · ${e.metric} (${e.direction}) · owner ${e.owner} · ${e.id} · started ${e.started ? age(e.started) + " ago" : "not yet"}`),
    h("div", { id: "progress" }, `trials ${p.trials_done}/${p.trials_total} done, ${p.trials_running} running, ` +
      `${p.trials_failed} failed · ${p.epochs_spent} epochs spent of at most ${fmt(fullBudget(p))} ` +
      `(${p.epoch_budget || "?"} per trial)`),
    ...(e.error ? [h("div", { class: "error" }, e.error)] : []));
  const terminal = TERMINAL.includes(e.state);
  for (const [verb, ok] of [["cancel", !terminal], ["pause", ["RUNNING", "PENDING", "RESUMING"].includes(e.state)],
                            ["resume", e.state === "PAUSED"]]) {
    const button = document.getElementById(verb);
    if (button) button.disabled = !ok;
  }
  if (els.mlflow) {
    els.mlflow.replaceChildren(e.mlflow_url
      ? h("a", { href: e.mlflow_url, target: "_blank", rel: "noopener", id: "mlflow-link",
                 title: `start the MLflow UI first: automl ui ${e.workspace}` }, "MLflow runs")
      : h("span", { class: "muted" }, "MLflow runs: none yet"));
  }
  drawBest(e, trials, els.best);
  drawCurves(e, trials, els.curves);
  drawRungs(trials, els.rungs);
  drawLineage(trials, els.lineage);
  drawTrials(e, trials, els.trials);
}

function drawBest(e, trials, box) {
  const best = e.progress.best;
  if (!best) { box.replaceChildren(h("p", { class: "muted" }, `no trial has a finite ${e.metric} at the top budget yet`)); return; }
  const trial = trials.find((t) => t.rec_id === best.rec_id);
  const rows = [["trial", `#${trial ? trial.index : "?"} ${best.rec_id}`], [e.metric, fmt(best.score)],
    ["observed budget", `${best.observed_budget} epochs`],
    ["checkpoint", best.checkpoint ? `${best.checkpoint} (TAO epoch ${best.checkpoint_epoch})` : "none at that epoch"],
    ...Object.entries(trial ? trial.params : {}).sort().map(([k, v]) => [k, fmt(v)])];
  box.replaceChildren(h("table", { id: "best-table" }, h("tbody", {},
    rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", { class: k === "checkpoint" ? "mono" : "" }, v))))));
}

// Learning curves: one polyline per trial (metric per validated epoch), coloured by outcome;
// dashed verticals mark the epoch budgets trials were given (the rungs) and the full budget.
function drawCurves(e, trials, box) {
  const W = 640, H = 300, L = 52, R = 12, T = 18, B = 34;
  const series = trials.map((t) => ({ t, pts: t.results.filter((r) => Number.isFinite(r[e.metric]))
    .map((r) => [r.epoch, r[e.metric]]) })).filter((s) => s.pts.length);
  const rungs = [...new Set(trials.map((t) => t.budget).filter((b) => b > 0))].sort((a, b) => a - b);
  const maxEpoch = Math.max(1, e.settings.max_epochs || 0, ...rungs, ...series.flatMap((s) => s.pts.map((p) => p[0])));
  const values = series.flatMap((s) => s.pts.map((p) => p[1]));
  let lo = Math.min(...values), hi = Math.max(...values);
  if (!values.length) { lo = 0; hi = 1; }
  if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
  const x = (ep) => L + (W - L - R) * ep / maxEpoch;
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  const chart = svg("svg", { class: "curves", id: "curves", viewBox: `0 0 ${W} ${H}`, role: "img",
                             "aria-label": `${e.metric} per epoch of every trial` });
  chart.append(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fff", stroke: "#bbb" }));
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4;
    chart.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#eee" }),
      svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" }, document.createTextNode(fmt(v))));
  }
  for (const r of rungs) {
    chart.append(svg("line", { class: "rung", x1: x(r), x2: x(r), y1: T, y2: H - B, stroke: "#888", "stroke-dasharray": "4 3" }),
      svg("text", { x: x(r), y: T - 4, "text-anchor": "middle" }, document.createTextNode(`${r} ep`)));
  }
  const step = Math.max(1, Math.ceil(maxEpoch / 10));
  for (let ep = 0; ep <= maxEpoch; ep += step) {
    chart.append(svg("text", { x: x(ep), y: H - B + 14, "text-anchor": "middle" }, document.createTextNode(String(ep))));
  }
  chart.append(svg("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, document.createTextNode("epoch")));
  for (const { t, pts } of series) {
    const color = OUTCOME_COLORS[t.status] || "#444";
    const line = svg("polyline", { class: "curve", "data-rec": t.rec_id, "data-points": pts.length, fill: "none",
      stroke: color, "stroke-width": 1.8, points: pts.map(([ep, v]) => `${x(ep)},${y(v)}`).join(" ") });
    line.append(svg("title", {}, document.createTextNode(`#${t.index} ${t.rec_id}: ${outcome(t)}`)));
    chart.append(line);
    const [ep, v] = pts[pts.length - 1];
    chart.append(svg("circle", { cx: x(ep), cy: y(v), r: 3.2, fill: color }),
      svg("text", { x: x(ep) + 5, y: y(v) - 4, class: "label", style: `fill:${color}` }, document.createTextNode(`#${t.index}`)));
  }
  const present = [...new Set(trials.map((t) => t.status))];
  box.replaceChildren(chart, h("div", { class: "legend", id: "curves-legend" },
    present.map((s) => h("span", {}, dot(s), `${s} (${trials.filter((t) => t.status === s).length})`))),
    h("div", { class: "muted" }, `${e.metric} at each validated epoch; dashed lines: the epoch budgets trials were given (rungs)`));
}

// Bracket algorithms: per bracket, which trials reached each rung (went up from the one below).
function drawRungs(trials, box) {
  const laddered = trials.filter((t) => t.rung !== null && t.rung !== undefined);
  if (!laddered.length) { box.replaceChildren(); return; }
  const brackets = [...new Set(laddered.map((t) => t.bracket ?? 0))].sort((a, b) => a - b);
  const top = Math.max(...laddered.map((t) => t.rung));
  const head = h("tr", {}, h("th", {}, "bracket"), Array.from({ length: top + 1 }, (_, r) => h("th", {}, `rung ${r}`)));
  const rows = brackets.map((b) => h("tr", {}, h("th", {}, String(b)), Array.from({ length: top + 1 }, (_, r) => {
    const reached = laddered.filter((t) => (t.bracket ?? 0) === b && t.rung >= r);
    return h("td", {}, reached.map((t) => h("div", { title: outcome(t) }, dot(t.status), `#${t.index} ${fmt(t.score)}`)));
  })));
  box.replaceChildren(h("h3", {}, "Rungs and brackets"),
    h("p", { class: "muted" }, "A trial listed under a rung reached it; under the next one, it was promoted."),
    h("table", { id: "rung-table" }, h("thead", {}, head), h("tbody", {}, rows)));
}

// PBT: which trial each one started from (its parent's checkpoint), as a tree.
function drawLineage(trials, box) {
  if (!trials.some((t) => t.parent)) { box.replaceChildren(); return; }
  const byParent = new Map();
  for (const t of trials) {
    const key = trials.some((p) => p.rec_id === t.parent) ? t.parent : null;
    if (!byParent.has(key)) byParent.set(key, []);
    byParent.get(key).push(t);
  }
  const tree = (key, depth) => h("ul", { class: "lineage" }, (byParent.get(key) || []).map((t) =>
    h("li", {}, dot(t.status), `#${t.index} ${t.rec_id} · ${fmt(t.score)}`, depth < 50 ? tree(t.rec_id, depth + 1) : null)));
  box.replaceChildren(h("h3", {}, "PBT lineage"), h("p", { class: "muted" }, "each trial under the one whose checkpoint it exploited"),
    h("div", { id: "lineage-tree" }, tree(null, 0)));
}

function drawTrials(e, trials, box) {
  if (!trials.length) { box.replaceChildren(h("p", { class: "muted", id: "no-trials" }, "no trial has started yet")); return; }
  const best = e.progress.best && e.progress.best.rec_id;
  const head = h("tr", {}, ["trial", "state", "rung / bracket", "epochs", e.metric, "outcome"].map((c) => h("th", {}, c)));
  const rows = trials.map((t) => h("tr", { "data-rec": t.rec_id, class: t.rec_id === best ? "best" : "" },
    h("td", {}, `#${t.index} `, h("span", { class: "mono" }, t.rec_id)),
    h("td", { class: "status" }, dot(t.status), t.status),
    h("td", {}, t.rung === null || t.rung === undefined ? "–" : `${t.rung} / ${fmt(t.bracket)}`),
    h("td", { class: "num" }, `${t.observed_budget}/${t.budget}`),
    h("td", { class: "num" }, fmt(t.score)),
    h("td", {}, outcome(t), t.hint ? h("div", { class: "hint" }, t.hint) : null)));
  box.replaceChildren(h("table", { id: "trials" }, h("thead", {}, head), h("tbody", {}, rows)));
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("logout").addEventListener("click", signOut);
  route();
});

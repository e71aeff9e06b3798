// automl web page: every view is drawn from the REST API (/api/v1) with the user's token.
// Plain JavaScript, no library: the page must run offline with no build step. Text from the
// API is only ever set with textContent / attributes (never innerHTML), so nothing is injected.
"use strict";

const API = "/api/v1";
const POLL_MS = 1000;
const TERMINAL = ["SUCCEEDED", "FAILED", "CANCELED"];
const ANALYSIS_MS = 5000;  // the server-side analysis (fANOVA) is asked for at most this often
// The submit form's fields, by the request key each sets: errors name the field as it reads.
const FORM_WORDS = {
  skill: "skill", algo: "algorithm", max_recommendations: "trials", max_epochs: "max epochs",
  max_concurrent: "at once", metric: "metric", direction: "direction", overrides: "overrides",
  data: "data inputs",
};
const HANDOFF_ACTIONS = ["evaluate", "export", "inference", "quantize"];

let timer = null;  // the current view's poll
let notice = "";  // a line for the next view (what the server ignored of a submitted study)

// -- helpers ------------------------------------------------------------------------------

const { h, fmt } = Views;  // views.js: the drawing module the report shares

function age(seconds) {
  const s = Math.max(0, Date.now() / 1000 - seconds);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
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
  const trial = location.hash.match(/^#\/experiments\/([\w-]+)\/trials\/([\w-]+)$/);
  if (trial) return trialView(trial[1], trial[2]);
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
    h("td", { class: "num" }, best), h("td", { title: Views.clock(e.created) }, `${age(e.created)} ago`));
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

// Everything the views draw, as the API gives it; trials updated incrementally with ?after=.
function experimentFeed(id) {
  const trials = new Map();
  let after = 0, analysisAt = 0, analysisVersion = -1;
  const doc = { experiment: null, trials: [], analysis: null };
  return {
    doc,
    async poll() {
      doc.experiment = await api("GET", `/experiments/${id}`);
      const changed = await api("GET", `/experiments/${id}/trials?after=${after}`);
      for (const trial of changed.trials) trials.set(trial.rec_id, trial);
      after = changed.last_version;
      doc.trials = [...trials.values()].sort((a, b) => a.index - b.index);
      // The analysis (importance needs a model) is asked for when trials changed, at most
      // every ANALYSIS_MS; the server caches it per history change.
      if (after !== analysisVersion && Date.now() - analysisAt > ANALYSIS_MS) {
        analysisAt = Date.now();
        analysisVersion = after;
        doc.analysis = await api("GET", `/experiments/${id}/analysis`);
      }
      return doc;
    },
  };
}

function experimentView(id) {
  const root = h("div", { id: "dashboard" });
  const error = h("p", { class: "error", id: "experiment-error" });
  const shown = notice;
  notice = "";
  show(h("p", {}, h("a", { href: "#/" }, "← all experiments")),
    shown ? h("p", { class: "muted", id: "notice" }, shown) : null, error, root);
  const board = new Views.Dashboard(root, { controls: true, open: (rec) => { location.hash = `#/experiments/${id}/trials/${rec}`; } });
  const els = { error, handoff: h("div", { id: "handoff-result", class: "mono" }) };
  drawActions(id, board.els.actions, els);
  const feed = experimentFeed(id);
  let finalPoll = false;
  const poll = async () => {
    try {
      const doc = await feed.poll();
      error.textContent = "";
      board.update(doc);
      enableActions(doc, els);
      if (TERMINAL.includes(doc.experiment.state)) {
        if (finalPoll) clearInterval(timer);
        finalPoll = true;  // one more poll picks up the trials written as it ended
      }
    } catch (err) {
      error.textContent = err.status === 403 ? `403 Forbidden: ${err.message.slice(5)}` : err.message;
      if (err.status === 403 || err.status === 404) clearInterval(timer);
    }
  };
  whoAmI().catch(() => {});
  poll();
  timer = setInterval(poll, POLL_MS);
}

function drawActions(id, box, els) {
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
  els.mlflow = h("span", { id: "mlflow" });
  box.replaceChildren(h("div", { class: "actions" },
    ...["cancel", "pause", "resume"].map((verb) => h("button", { id: verb, type: "button", onclick: act(verb), disabled: true },
      verb[0].toUpperCase() + verb.slice(1))),
    h("span", { class: "spacer" }), action,
    h("button", { id: "handoff", type: "button", onclick: handoff, disabled: true }, "Hand off"),
    h("button", { id: "report", type: "button", onclick: () => saveReport(id, els), disabled: true }, "Download the report"),
    els.mlflow), els.handoff);
}

// A button is enabled only when its action can act now; its title says why when it cannot.
function enableActions(doc, els) {
  const e = doc.experiment;
  const finished = doc.trials.some((t) => ["completed", "recovered", "stopped", "failed"].includes(t.status));
  const rules = {
    cancel: [!TERMINAL.includes(e.state), "the experiment has ended"],
    pause: [["RUNNING", "PENDING", "RESUMING"].includes(e.state), "only a queued or running experiment pauses"],
    resume: [e.state === "PAUSED", "only a paused experiment resumes"],
    handoff: [TERMINAL.includes(e.state) && Boolean(e.progress.best), "hand-off takes the best trial once the experiment has ended with one"],
    report: [finished, "the report is written once a trial has finished"],
  };
  for (const [id, [ok, why]] of Object.entries(rules)) {
    const button = document.getElementById(id);
    if (!button) continue;
    button.disabled = !ok;
    button.title = ok ? "" : why;
  }
  els.mlflow.replaceChildren(e.mlflow_url
    ? h("a", { href: e.mlflow_url, target: "_blank", rel: "noopener", id: "mlflow-link",
               title: `start the MLflow UI first: automl ui ${e.workspace}` }, "MLflow runs")
    : h("span", { class: "muted" }, "MLflow runs: none yet"));
}

// The report is one self-contained HTML file (views and data inline): it is fetched with the
// token and saved, to be opened from disk (offline, no server needed).
async function saveReport(id, els) {
  els.error.textContent = "";
  try {
    const response = await fetch(`${API}/experiments/${id}/report`, { headers: { Authorization: `Bearer ${token()}` } });
    if (!response.ok) throw new ApiError(response.status, explain(await response.json().catch(() => null)));
    const url = URL.createObjectURL(new Blob([await response.text()], { type: "text/html" }));
    const a = h("a", { href: url, download: `automl-report-${id.slice(0, 8)}.html` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (err) { els.error.textContent = `report: ${err.message}`; }
}

// -- one trial --------------------------------------------------------------------------------

function trialView(id, recId) {
  const box = h("div", { id: "trial-box" }, h("p", { class: "muted" }, "Loading…"));
  const error = h("p", { class: "error", id: "experiment-error" });
  show(h("p", {}, h("a", { href: `#/experiments/${id}`, id: "back" }, "← the experiment")), error, box);
  const feed = experimentFeed(id);
  const ui = { open: (rec) => { location.hash = `#/experiments/${id}/trials/${rec}`; }, now: () => Date.now() / 1000 };
  let ended = false;
  const poll = async () => {
    try {
      const doc = await feed.poll();
      const trial = doc.trials.find((t) => t.rec_id === recId);
      if (!trial) throw new ApiError(404, `no trial ${recId} in this experiment`);
      const details = await api("GET", `/experiments/${id}/trials/${recId}/details?tail_lines=80`);
      const open = box.querySelector("#trial-spec-box");
      const keep = open && open.open;
      box.replaceChildren(Views.trialPage(doc, trial, details, ui));
      if (keep) box.querySelector("#trial-spec-box").open = true;
      error.textContent = "";
      if (ended) clearInterval(timer);
      ended = TERMINAL.includes(doc.experiment.state) || ["completed", "recovered", "stopped", "failed"].includes(trial.status);
    } catch (err) {
      error.textContent = err.message;
      if (err.status === 403 || err.status === 404) clearInterval(timer);
    }
  };
  whoAmI().catch(() => {});
  poll();
  timer = setInterval(poll, 2 * POLL_MS);
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("logout").addEventListener("click", signOut);
  route();
});

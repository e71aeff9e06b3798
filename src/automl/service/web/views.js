// automl views: every picture of an experiment, drawn from one document
//   { experiment, trials, analysis }  (the REST API's shapes: GET /experiments/{id},
//   .../trials, .../analysis)
// by the web page (app.js, which polls the API and calls Dashboard.update) and by the report
// that `automl report` writes (this file and the document inline, Views.report). One module,
// so the page and the report cannot drift. Plain JavaScript, no library, no network; text from
// the data is only ever set with textContent / attributes (never innerHTML).
"use strict";

const Views = (() => {
  const OUTCOME_COLORS = {
    completed: "#2ca02c", recovered: "#17becf", failed: "#d62728", stopped: "#ff7f0e",
    running: "#1f6fd1", paused: "#9467bd", pending: "#c7c7c7",
  };
  const STATUS_ORDER = ["completed", "recovered", "stopped", "failed", "running", "paused", "pending"];
  const COUNTED = ["completed", "recovered"];  // what best_rec.json's rule may pick
  const COMPARE_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
  const GREY = "#d0d0d0";

  // -- helpers ------------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  // replaceChildren without the nulls of views that have nothing to add.
  function put(box, ...nodes) {
    box.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
  }

  function svg(tag, attrs, ...children) {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, String(value));
    }
    for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return el;
  }

  const tip = (text) => svg("title", {}, text);

  function fmt(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number" && !Number.isInteger(value)) return value.toPrecision(4);
    return String(value);
  }

  // Absolute local time, for hover titles and the report.
  function clock(seconds) {
    if (!seconds) return "";
    const d = new Date(seconds * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function span(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 90) return `${s} s`;
    if (s < 5400) return `${Math.floor(s / 60)} min ${s % 60 ? `${s % 60} s` : ""}`.trim();
    if (s < 172800) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
    return `${Math.round(s / 86400)} d`;
  }

  // A time as "12 s ago" with the absolute time on hover.
  function when(seconds, now) {
    return h("span", { class: "when", title: clock(seconds) }, `${span(now - seconds)} ago`);
  }

  // A dotted name that may wrap only after its dots (never inside a word).
  function nameNode(name) {
    const parts = String(name).split(".");
    return h("span", { class: "name" }, parts.flatMap((p, i) => (i < parts.length - 1 ? [`${p}.`, h("wbr")] : [p])));
  }

  // The same in SVG: lines of whole dot-separated parts, each at most `chars` long if it can be.
  function nameLines(name, chars) {
    const lines = [];
    for (const part of String(name).split(".").map((p, i, all) => (i < all.length - 1 ? `${p}.` : p))) {
      if (lines.length && (lines[lines.length - 1] + part).length <= chars) lines[lines.length - 1] += part;
      else lines.push(part);
    }
    return lines;
  }

  function dot(status) {
    return h("span", { class: "dot", style: `background:${OUTCOME_COLORS[status] || "#444"}` });
  }

  function outcome(trial) {
    return trial.failure_class ? `${trial.status}: ${trial.failure_class}` : trial.status;
  }

  const finite = (v) => typeof v === "number" && Number.isFinite(v);
  const better = (direction, a, b) => (direction === "min" ? a < b : a > b);

  // Where to put labels along one axis so that none overlaps another: each keeps its wanted
  // position or moves up to `slack` away; one that cannot is left out (its mark keeps a title).
  function placeLabels(items, gap, lo, hi, slack) {
    const placed = [];
    let last = -Infinity;
    for (const item of [...items].sort((a, b) => a.pos - b.pos)) {
      const pos = Math.max(item.pos, last + gap, lo);
      if (pos > hi || pos - item.pos > slack) continue;
      placed.push({ ...item, at: pos });
      last = pos;
    }
    return placed;
  }

  // "Nice" ticks: about `count` round values spanning [lo, hi].
  function ticks(lo, hi, count) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / count;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
    return out;
  }

  function tickText(v) {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(1) : String(Number(v.toPrecision(4)));
  }

  function empty(id, text) { return h("p", { class: "muted empty", id }, text); }

  function points(trial, metric) {
    return (trial.results || []).filter((r) => finite(r[metric])).map((r) => [r.epoch, r[metric]]);
  }

  // -- derived numbers ----------------------------------------------------------------------

  function counts(trials) {
    const by = (names) => trials.filter((t) => names.includes(t.status)).length;
    return { done: by(["completed", "recovered", "stopped"]), running: by(["running"]),
             waiting: by(["paused", "pending"]), failed: by(["failed"]) };
  }

  // The comparable budget (the largest any scored trial reached) and the best at it.
  function topBudget(trials) {
    return Math.max(0, ...trials.filter((t) => finite(t.score)).map((t) => t.observed_budget));
  }

  // A parameter's axis: from the analysis (the space's range and scale) or from the values.
  function axesOf(doc) {
    const known = new Map(((doc.analysis || {}).params || []).map((a) => [a.name, a]));
    const names = [...known.keys()];
    for (const t of doc.trials) for (const k of Object.keys(t.params || {})) if (!known.has(k)) names.push(k);
    const axes = [];
    for (const name of [...new Set(names)]) {
      const values = doc.trials.map((t) => (t.params || {})[name]).filter((v) => v !== undefined && v !== null);
      if (!values.length) continue;
      let axis = known.get(name);
      if (!axis) {
        if (new Set(values.map((v) => JSON.stringify(v))).size < 2) continue;  // pinned: not an axis
        axis = values.every(finite)
          ? { name, kind: "float", low: Math.min(...values), high: Math.max(...values), log: false, choices: [] }
          : { name, kind: "categorical", choices: [...new Set(values.map((v) => JSON.stringify(v)))].map((v) => JSON.parse(v)) };
      }
      axes.push(axis);
    }
    return axes;
  }

  // Position of a value on its axis, in [0, 1] (null when it cannot be placed).
  function unit(axis, value) {
    if (value === null || value === undefined) return null;
    if (axis.kind === "categorical") {
      const i = axis.choices.findIndex((c) => JSON.stringify(c) === JSON.stringify(value));
      if (i < 0) return null;
      return axis.choices.length === 1 ? 0.5 : i / (axis.choices.length - 1);
    }
    if (!finite(value)) return null;
    let lo = axis.low, hi = axis.high, v = value;
    if (axis.log && lo > 0 && v > 0) { lo = Math.log10(lo); hi = Math.log10(hi); v = Math.log10(v); }
    return hi > lo ? (v - lo) / (hi - lo) : 0.5;
  }

  function axisTicks(axis) {
    if (axis.kind === "categorical") return axis.choices.map((c) => ({ u: unit(axis, c), text: String(c) }));
    if (!(axis.high > axis.low)) return [{ u: 0.5, text: tickText(axis.low) }];
    if (axis.log && axis.low > 0) {
      const lo = Math.log10(axis.low), hi = Math.log10(axis.high);
      return ticks(lo, hi, 4).map((e) => ({ u: (e - lo) / (hi - lo), text: tickText(10 ** e) }));
    }
    return ticks(axis.low, axis.high, 4).map((v) => ({ u: (v - axis.low) / (axis.high - axis.low), text: tickText(v) }));
  }

  // -- the header -------------------------------------------------------------------------

  // best_rec.json's comparison_to_baseline: {objective: {baseline, difference, gain,
  // relative_gain, direction}}; baseline_note says why there is none (not trained, ...).
  function comparison(bestRec) {
    const c = bestRec && bestRec.comparison_to_baseline;
    if (!c || typeof c !== "object" || !Object.keys(c).length) {
      const note = bestRec && bestRec.baseline_note;
      return note ? h("span", { id: "baseline", class: "muted" }, ` · baseline: ${note}`) : null;
    }
    // "+0.044 val_miou (14 % better)", "+2.8 latency_ms (35 % worse)": the sign is the value's,
    // better/worse follows the objective's direction.
    const parts = Object.entries(c).map(([name, g]) => {
      const rel = finite(g.relative_gain) ? ` (${Math.round(100 * Math.abs(g.relative_gain))} % ${g.gain >= 0 ? "better" : "worse"})`
        : ` (${g.gain > 0 ? "better" : g.gain < 0 ? "worse" : "the same"})`;
      return `${g.difference >= 0 ? "+" : ""}${fmt(g.difference)} ${name}${rel}`;
    });
    const base = bestRec.baseline ? ` (trial ${String(bestRec.baseline.rec_id).slice(0, 8)})` : "";
    return h("span", { id: "baseline", title: "gain of the best trial over the template's configuration, trained as one of the first trials" },
      ` · ${parts.join(", ")} over the template's configuration${base}`);
  }

  function drawHeader(doc, box, now, ui) {
    const e = doc.experiment, p = e.progress || {}, c = counts(doc.trials);
    const best = p.best;
    const bestRec = (doc.analysis || {}).best_rec;
    const perTrial = p.epoch_budget || (e.settings || {}).max_epochs;
    const ceiling = perTrial && p.trials_total ? p.trials_total * perTrial : null;
    const end = e.ended || (["SUCCEEDED", "FAILED", "CANCELED"].includes(e.state) ? null : now);
    put(box, 
      h("h2", { id: "title" }, nameNode(e.name), " ", h("span", { class: `state ${e.state}`, id: "state" }, e.state)),
      h("div", { class: "muted" }, `${e.algorithm} · ${e.metric} (${e.direction === "min" ? "lower" : "higher"} is better)` +
        `${e.owner ? ` · owner ${e.owner}` : ""} · ${e.id}`),
      h("div", { class: "facts" },
        h("div", { id: "h-best" }, h("b", {}, "best "), best
          ? [h("span", { class: "big" }, fmt(best.score)), ` ${e.metric} (trial ${best.rec_id.slice(0, 8)}, ${best.observed_budget} epochs)`, comparison(bestRec)]
          : h("span", { class: "muted" }, `none yet: the first trial to finish with a finite ${e.metric} sets it`)),
        h("div", { id: "progress" }, h("b", {}, "trials "),
          `${c.done} done, ${c.running} running, ${c.waiting} waiting, ${c.failed} failed` +
          ` of ${p.trials_total || doc.trials.length}`),
        h("div", { id: "epochs" }, h("b", {}, "epochs "), ceiling
          ? `${p.epochs_spent || 0} spent of at most ${ceiling} (${p.trials_total} trials × ${perTrial})`
          : `${p.epochs_spent || 0} spent (the budget is known once the run has started)`),
        h("div", { id: "times" }, h("b", {}, "time "),
          e.started ? h("span", { title: clock(e.started) }, `started ${clock(e.started)}`) : "not started yet",
          e.ended ? [" · ", h("span", { title: clock(e.ended) }, `ended ${clock(e.ended)}`)] : null,
          e.started && end ? ` · ${e.ended ? "took" : "running for"} ${span(end - e.started)}` : null)),
      e.state === "PAUSED" ? h("p", { class: "notice", id: "paused-note" },
        "Paused: finished trials are kept; paused trials continue from their last checkpoint. " +
        (ui.controls ? "Press Resume above to continue." : "Resume it on the server's web page.")) : null,
      e.error ? h("div", { class: "error", id: "run-error" }, e.error) : null);
  }

  // -- learning curves --------------------------------------------------------------------

  // One chart of metric per epoch; `colorOf(trial)` picks each line's colour.
  function curveChart(doc, trials, opts) {
    const e = doc.experiment, metric = e.metric;
    const W = 660, H = 300, L = 58, R = 44, T = 22, B = 36;
    const series = trials.map((t) => ({ t, pts: points(t, metric) })).filter((s) => s.pts.length);
    const rungs = opts.rungs ? [...new Set(doc.trials.map((t) => t.budget).filter((b) => b > 0))].sort((a, b) => a - b) : [];
    const maxEpoch = Math.max(1, (e.settings || {}).max_epochs || 0, ...rungs, ...series.flatMap((s) => s.pts.map((q) => q[0])));
    const values = series.flatMap((s) => s.pts.map((q) => q[1]));
    let lo = Math.min(...values), hi = Math.max(...values);
    if (hi - lo < 1e-12) { lo -= Math.abs(lo) * 0.05 || 0.5; hi += Math.abs(hi) * 0.05 || 0.5; }
    const pad = (hi - lo) * 0.04;
    lo -= pad; hi += pad;
    const x = (ep) => L + (W - L - R) * ep / maxEpoch;
    const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
    const chart = svg("svg", { class: "chart", id: opts.id, viewBox: `0 0 ${W} ${H}`, role: "img",
                               "aria-label": `${metric} per epoch` });
    chart.append(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fff", stroke: "#bbb" }));
    for (const v of ticks(lo, hi, 5)) {
      chart.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#eee" }),
        svg("text", { x: L - 5, y: y(v) + 4, "text-anchor": "end" }, tickText(v)));
    }
    for (const r of placeLabels(rungs.map((r) => ({ pos: x(r), r })), 34, L, W - R, 0)) {
      chart.append(svg("text", { class: "rung-label", x: r.at, y: T - 6, "text-anchor": "middle" }, `${r.r} ep`));
    }
    for (const r of rungs) chart.append(svg("line", { class: "rung", x1: x(r), x2: x(r), y1: T, y2: H - B, stroke: "#888", "stroke-dasharray": "4 3" }));
    const epochTicks = ticks(0, maxEpoch, Math.min(10, maxEpoch)).filter(Number.isInteger);
    for (const ep of epochTicks) chart.append(svg("text", { x: x(ep), y: H - B + 14, "text-anchor": "middle" }, String(ep)));
    chart.append(svg("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, "epoch"));
    const ends = [];
    for (const { t, pts } of series) {
      const color = opts.colorOf(t);
      const line = svg("polyline", { class: "curve", "data-rec": t.rec_id, "data-points": pts.length, fill: "none",
        stroke: color, "stroke-width": 1.8, points: pts.map(([ep, v]) => `${x(ep)},${y(v)}`).join(" "),
        onclick: () => opts.open && opts.open(t.rec_id) }, tip(`#${t.index} ${t.rec_id}: ${outcome(t)} · ${fmt(t.score)}`));
      chart.append(line);
      const [ep, v] = pts[pts.length - 1];
      chart.append(svg("circle", { cx: x(ep), cy: y(v), r: 3.2, fill: color }));
      ends.push({ pos: y(v), x: x(ep), color, text: `#${t.index}` });
    }
    // End labels right of each curve's end: never over another label, never past the frame.
    const byColumn = new Map();
    for (const end of ends) {
      const key = Math.round(end.x);
      if (!byColumn.has(key)) byColumn.set(key, []);
      byColumn.get(key).push(end);
    }
    for (const column of byColumn.values()) {
      for (const label of placeLabels(column, 12, T + 8, H - B, 30)) {
        chart.append(svg("text", { x: Math.min(label.x + 5, W - R + 5), y: label.at + 4, class: "end-label", style: `fill:${label.color}` }, label.text));
      }
    }
    return chart;
  }

  function drawCurves(doc, box, ui) {
    const e = doc.experiment;
    const drawn = doc.trials.filter((t) => points(t, e.metric).length);
    if (!drawn.length) {
      put(box, empty("curves-empty", doc.trials.length
        ? `The curves appear here after the first validated epoch: ${doc.trials.length} trial(s) started, none has reported ${e.metric} yet.`
        : "The curves appear here once the first trial reports a validated epoch (the experiment has not started a trial yet)."));
      return;
    }
    const colorOf = (t) => OUTCOME_COLORS[t.status] || "#444";
    const present = STATUS_ORDER.filter((s) => doc.trials.some((t) => t.status === s));
    put(box, curveChart(doc, doc.trials, { id: "curves", rungs: true, colorOf, open: ui.open }),
      h("div", { class: "legend", id: "curves-legend" },
        present.map((s) => h("span", {}, dot(s), `${s} (${doc.trials.filter((t) => t.status === s).length})`))),
      h("div", { class: "muted" }, `${e.metric} at each validated epoch; dashed lines: the epoch budgets trials were given (rungs). Click a curve to open its trial.`));
  }

  // -- best trial -------------------------------------------------------------------------

  function drawBest(doc, box, titleBox, ui) {
    const e = doc.experiment, best = (e.progress || {}).best;
    titleBox.textContent = e.state === "SUCCEEDED" ? "Best trial" : "Best trial so far";
    if (!best) {
      put(box, empty("best-empty", `The best trial appears here once a trial reports a finite ${e.metric} at the largest budget.`));
      return;
    }
    const trial = doc.trials.find((t) => t.rec_id === best.rec_id);
    const rows = [["trial", h("a", { href: "#", onclick: (ev) => { ev.preventDefault(); ui.open(best.rec_id); } }, `#${trial ? trial.index : "?"} ${best.rec_id}`)],
      [e.metric, fmt(best.score)], ["observed budget", `${best.observed_budget} epochs`],
      ["checkpoint", best.checkpoint ? `${best.checkpoint} (TAO epoch ${best.checkpoint_epoch})` : "none at that epoch"]];
    const kv = (list, id) => h("table", { class: "kv", id }, h("tbody", {},
      list.map(([k, v]) => h("tr", {}, h("th", {}, typeof k === "string" ? nameNode(k) : k), h("td", { class: k === "checkpoint" ? "mono" : "" }, v)))));
    const imp = (doc.analysis || {}).importances || {};
    const params = Object.entries(trial ? trial.params : {});
    const rank = (k) => (k in imp ? -imp[k] : 1);
    params.sort((a, b) => rank(a[0]) - rank(b[0]) || a[0].localeCompare(b[0]));
    const top = params.slice(0, 5), rest = params.slice(5);
    const label = (k, v) => [k, h("span", {}, fmt(v), k in imp ? h("span", { class: "muted" }, ` · importance ${imp[k].toFixed(2)}`) : null)];
    const more = h("details", { id: "best-more", open: ui.bestOpen || null,
      ontoggle: (ev) => { ui.bestOpen = ev.target.open; } },
      h("summary", {}, `all ${params.length} hyperparameters`), kv(rest.map(([k, v]) => label(k, v)), "best-rest"));
    put(box, kv(rows, "best-table"),
      h("h4", {}, Object.keys(imp).length ? "Hyperparameters, those that matter most first (fANOVA importance)" : "Hyperparameters"),
      kv(top.map(([k, v]) => label(k, v)), "best-params"), rest.length ? more : null);
  }

  // -- optimization history ---------------------------------------------------------------

  function drawHistory(doc, box, ui) {
    const e = doc.experiment;
    const scored = doc.trials.filter((t) => finite(t.score));
    if (!scored.length) { put(box, empty("history-empty", `The optimization history appears once a trial has a ${e.metric}.`)); return; }
    const top = topBudget(doc.trials);
    // Trials in the order they ended (running ones last): epochs spent when each one ended.
    const order = [...doc.trials].sort((a, b) => (a.ended_at || Infinity) - (b.ended_at || Infinity) || a.index - b.index);
    let spent = 0, bestSoFar = null;
    const marks = [], steps = [];
    for (const t of order) {
      spent += t.observed_budget;
      if (!finite(t.score)) continue;
      marks.push({ t, x: spent, v: t.score, atTop: t.observed_budget === top });
      if (t.observed_budget === top && COUNTED.includes(t.status) && (bestSoFar === null || better(e.direction, t.score, bestSoFar))) bestSoFar = t.score;
      if (bestSoFar !== null) steps.push([spent, bestSoFar]);
    }
    const W = 660, H = 260, L = 58, R = 16, T = 14, B = 36;
    const vs = marks.map((m) => m.v);
    let lo = Math.min(...vs), hi = Math.max(...vs);
    if (hi - lo < 1e-12) { lo -= 0.5; hi += 0.5; }
    const maxX = Math.max(1, spent);
    const x = (v) => L + (W - L - R) * v / maxX, y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
    const chart = svg("svg", { class: "chart", id: "history", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "optimization history" });
    chart.append(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fff", stroke: "#bbb" }));
    for (const v of ticks(lo, hi, 5)) chart.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#eee" }), svg("text", { x: L - 5, y: y(v) + 4, "text-anchor": "end" }, tickText(v)));
    for (const v of ticks(0, maxX, 8).filter(Number.isInteger)) chart.append(svg("text", { x: x(v), y: H - B + 14, "text-anchor": "middle" }, String(v)));
    chart.append(svg("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, "epochs spent (all trials, as they ended)"));
    if (steps.length) {
      const path = steps.map(([sx, sv], i) => `${i ? `L${x(sx)},${y(steps[i - 1][1])} ` : `M${x(sx)},${y(sv)} `}L${x(sx)},${y(sv)}`).join(" ") + ` L${x(maxX)},${y(steps[steps.length - 1][1])}`;
      chart.append(svg("path", { id: "best-so-far", d: path, fill: "none", stroke: "#000", "stroke-width": 1.6 }));
    }
    for (const m of marks) {
      const color = OUTCOME_COLORS[m.t.status] || "#444";
      chart.append(svg("circle", { class: "mark", "data-rec": m.t.rec_id, cx: x(m.x), cy: y(m.v), r: 4, stroke: color, "stroke-width": 1.6,
        fill: m.atTop ? color : "#fff", onclick: () => ui.open(m.t.rec_id) },
        tip(`#${m.t.index} ${m.t.rec_id}: ${fmt(m.v)} at ${m.t.observed_budget} epochs (${outcome(m.t)})`)));
    }
    put(box, chart, h("div", { class: "muted" },
      `Each point is a trial's ${e.metric} when it ended, placed at the epochs all trials had spent by then; filled: observed at the largest budget (${top} epochs), hollow: stopped earlier (not comparable). The black line is the best so far at ${top} epochs, best_rec.json's rule.`));
  }

  // -- importance -------------------------------------------------------------------------

  function drawImportance(doc, box) {
    const a = doc.analysis || {};
    const imp = Object.entries(a.importances || {});
    if (!imp.length) { put(box, empty("importance-empty", a.importance_note || "Importance appears once two trials have a score.")); return; }
    const max = Math.max(...imp.map(([, v]) => v));
    put(box, h("table", { id: "importance", class: "bars" }, h("tbody", {}, imp.map(([k, v]) =>
      h("tr", { "data-param": k }, h("th", {}, nameNode(k)),
        h("td", {}, h("div", { class: "bar", style: `width:${(100 * v / max).toFixed(1)}%` }), h("span", { class: "num" }, v.toFixed(3))))))),
      h("p", { class: "muted" }, a.importance_note));
  }

  // -- parallel coordinates (brushable) ---------------------------------------------------

  // The trials every brush lets through (a brush is a [lo, hi] range in axis units).
  function brushed(doc, ui) {
    const axes = parallelAxes(doc);
    return doc.trials.filter((t) => Object.entries(ui.brush).every(([name, [lo, hi]]) => {
      const axis = axes.find((a) => a.name === name);
      if (!axis) return true;
      const u = axis.metric ? metricUnit(doc, t.score) : unit(axis, (t.params || {})[name]);
      return u !== null && u >= lo && u <= hi;
    }));
  }

  function metricRange(doc) {
    const s = doc.trials.map((t) => t.score).filter(finite);
    return s.length ? [Math.min(...s), Math.max(...s)] : [0, 1];
  }

  function metricUnit(doc, v) {
    if (!finite(v)) return null;
    const [lo, hi] = metricRange(doc);
    return hi > lo ? (v - lo) / (hi - lo) : 0.5;
  }

  function parallelAxes(doc) {
    const [lo, hi] = metricRange(doc);
    return [...axesOf(doc), { name: doc.experiment.metric, metric: true, kind: "float", low: lo, high: hi, log: false, choices: [] }];
  }

  function drawParallel(doc, box, ui, redraw) {
    const scored = doc.trials.filter((t) => finite(t.score));
    const axes = parallelAxes(doc);
    if (scored.length < 2 || axes.length < 2) {
      put(box, empty("parallel-empty", "Parallel coordinates appear once two trials have a score: one line per trial across every hyperparameter and the metric."));
      return;
    }
    const gapX = Math.max(110, Math.min(170, 900 / axes.length));
    const L = 70, T = 16, plotH = 240, W = L + gapX * (axes.length - 1) + 70, H = T + plotH + 64;
    const ax = (i) => L + i * gapX, uy = (u) => T + plotH * (1 - u);
    const chart = svg("svg", { class: "chart", id: "parallel", viewBox: `0 0 ${W} ${H}`, width: W, role: "img", "aria-label": "parallel coordinates" });
    const passing = new Set(brushed(doc, ui).map((t) => t.rec_id));
    const [mlo, mhi] = metricRange(doc);
    const shade = (v) => {  // brighter is better
      const q = mhi > mlo ? (v - mlo) / (mhi - mlo) : 1;
      const g = doc.experiment.direction === "min" ? 1 - q : q;
      return `hsl(${Math.round(260 - 200 * g)},70%,${Math.round(35 + 15 * g)}%)`;
    };
    const order = [...scored].sort((a, b) => (passing.has(a.rec_id) - passing.has(b.rec_id)) || (better(doc.experiment.direction, a.score, b.score) ? 1 : -1));
    for (const t of order) {
      const us = axes.map((a) => (a.metric ? metricUnit(doc, t.score) : unit(a, (t.params || {})[a.name])));
      const pts = us.map((u, i) => (u === null ? null : `${ax(i)},${uy(u)}`)).filter(Boolean).join(" ");
      const on = passing.has(t.rec_id);
      chart.append(svg("polyline", { class: on ? "pc-line" : "pc-line filtered", "data-rec": t.rec_id, points: pts, fill: "none",
        stroke: on ? shade(t.score) : GREY, "stroke-width": on ? 1.8 : 1, "stroke-dasharray": t.observed_budget === topBudget(doc.trials) ? null : "4 3",
        onclick: () => ui.open(t.rec_id) }, tip(`#${t.index} ${t.rec_id}: ${fmt(t.score)}`)));
    }
    axes.forEach((a, i) => {
      const x = ax(i);
      chart.append(svg("line", { x1: x, x2: x, y1: T, y2: T + plotH, stroke: "#333" }));
      for (const tk of placeLabels(axisTicks(a).map((t) => ({ pos: uy(t.u), text: t.text })).reverse(), 12, T, T + plotH + 4, 0)) {
        chart.append(svg("text", { x: x - 5, y: tk.at + 4, "text-anchor": "end", class: "tick" }, tk.text.length > 12 ? `${tk.text.slice(0, 11)}…` : tk.text));
      }
      const lines = nameLines(a.name + (a.log ? " (log)" : ""), Math.floor(gapX / 6.5));
      const label = svg("text", { x, y: T + plotH + 16, "text-anchor": "middle", class: a.metric ? "axis-name metric" : "axis-name" });
      // a part longer than the gap between axes is cut (the full name is the label's title)
      const room = Math.floor(gapX / 6.5);
      lines.slice(-3).forEach((line, k) => label.append(svg("tspan", { x, dy: k ? 12 : 0 }, line.length > room ? `${line.slice(0, room - 1)}…` : line)));
      label.append(tip(a.name));
      chart.append(label);
      const b = ui.brush[a.name];
      if (b) chart.append(svg("rect", { class: "brush", "data-axis": a.name, x: x - 8, width: 16, y: uy(b[1]), height: Math.max(2, uy(b[0]) - uy(b[1])), fill: "rgba(31,111,209,.25)", stroke: "#1f6fd1" }));
      // The brush handle: a drag along the axis selects a range; a click without a drag clears it
      // (it reaches a little past both ends, so a drag from just outside takes the extreme trials in).
      const grip = svg("rect", { class: "brush-grip", "data-axis": a.name, x: x - 10, width: 20, y: T - 8, height: plotH + 16, fill: "transparent", style: "cursor:crosshair" });
      grip.addEventListener("pointerdown", (ev) => {
        ev.preventDefault();
        const toU = (clientY) => {
          const m = chart.getScreenCTM();
          const py = m ? (clientY - m.f) / m.d : clientY;
          return Math.min(1, Math.max(0, 1 - (py - T) / plotH));
        };
        const start = toU(ev.clientY);
        ui.dragging = true;
        const shadow = svg("rect", { x: x - 8, width: 16, y: uy(start), height: 0, fill: "rgba(31,111,209,.25)", stroke: "#1f6fd1" });
        chart.append(shadow);
        const move = (mv) => {
          const u = toU(mv.clientY);
          shadow.setAttribute("y", uy(Math.max(u, start)));
          shadow.setAttribute("height", Math.abs(uy(u) - uy(start)));
        };
        const up = (uv) => {
          window.removeEventListener("pointermove", move);
          window.removeEventListener("pointerup", up);
          ui.dragging = false;
          const end = toU(uv.clientY);
          if (Math.abs(end - start) < 0.01) delete ui.brush[a.name];
          else ui.brush[a.name] = [Math.min(start, end), Math.max(start, end)];
          redraw();
        };
        window.addEventListener("pointermove", move);
        window.addEventListener("pointerup", up);
      });
      chart.append(grip);
    });
    const active = Object.keys(ui.brush);
    put(box, h("div", { class: "scroll" }, chart),
      h("div", { class: "muted", id: "brush-status" }, active.length
        ? [`${passing.size} of ${doc.trials.length} trials within the brushed ranges (${active.join(", ")}); the trial table shows only them. `,
           h("button", { type: "button", id: "clear-brush", onclick: () => { ui.brush = {}; redraw(); } }, "Clear the brushes")]
        : `One line per scored trial, coloured by ${doc.experiment.metric} (brighter is better); dashed: stopped below the largest budget. Drag along an axis to keep only the trials in that range; click an axis to clear it.`));
  }

  // -- slice plots ------------------------------------------------------------------------

  function drawSlices(doc, box, ui) {
    const e = doc.experiment;
    const scored = doc.trials.filter((t) => finite(t.score));
    const axes = axesOf(doc);
    if (!scored.length || !axes.length) { put(box, empty("slices-empty", `Slice plots appear once a trial has a ${e.metric}: one plot per hyperparameter, its value against the score.`)); return; }
    const [lo0, hi0] = metricRange(doc);
    const lo = hi0 > lo0 ? lo0 - (hi0 - lo0) * 0.05 : lo0 - 0.5, hi = hi0 > lo0 ? hi0 + (hi0 - lo0) * 0.05 : hi0 + 0.5;
    const passing = new Set(brushed(doc, ui).map((t) => t.rec_id));
    const W = 250, H = 180, L = 48, R = 12, T = 10, B = 30;
    const plots = axes.map((a) => {
      const chart = svg("svg", { class: "chart slice", "data-param": a.name, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${a.name} against ${e.metric}` });
      const x = (u) => L + 8 + (W - L - R - 16) * u, y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
      chart.append(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fff", stroke: "#bbb" }));
      for (const v of ticks(lo, hi, 4)) chart.append(svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" }, tickText(v)));
      for (const tk of placeLabels(axisTicks(a).map((t) => ({ pos: x(t.u), text: t.text })), 44, 0, W, 0)) {
        chart.append(svg("text", { x: tk.at, y: H - B + 13, "text-anchor": "middle" }, tk.text.length > 8 ? `${tk.text.slice(0, 7)}…` : tk.text));
      }
      for (const t of scored) {
        const u = unit(a, (t.params || {})[a.name]);
        if (u === null) continue;
        const on = passing.has(t.rec_id);
        chart.append(svg("circle", { class: "mark", "data-rec": t.rec_id, cx: x(u), cy: y(t.score), r: 3.6,
          fill: on ? OUTCOME_COLORS[t.status] || "#444" : GREY, "fill-opacity": 0.85, onclick: () => ui.open(t.rec_id) },
          tip(`#${t.index}: ${a.name} = ${fmt((t.params || {})[a.name])}, ${e.metric} ${fmt(t.score)}`)));
      }
      return h("figure", { class: "slice-box" }, chart, h("figcaption", {}, nameNode(a.name), a.log ? " (log)" : ""));
    });
    put(box, h("div", { class: "slices", id: "slices" }, plots),
      h("p", { class: "muted" }, `Each hyperparameter's value (x) against ${e.metric} (y), one dot per scored trial, coloured by outcome; trials outside the brushed ranges are grey.`));
  }

  // -- timeline ---------------------------------------------------------------------------

  // Trials on slots: each trial takes the lowest slot free when it started (interval
  // partitioning), so gaps in a lane are idle slot time (a rung wait, a free slot).
  function drawTimeline(doc, box, ui, now) {
    // One bar per stretch a trainer ran (t.runs): a trial waiting at a rung holds no slot. A
    // history written before runs were recorded has one stretch, its start to its end.
    const stretches = [];
    for (const t of doc.trials.filter((q) => q.started_at)) {
      const runs = Array.isArray(t.runs) && t.runs.length ? t.runs : [[t.started_at, t.ended_at]];
      for (const [s, e] of runs) {
        const stop = finite(e) ? e : (t.status === "running" ? now : (t.ended_at || s));
        stretches.push({ t, s, e: Math.max(s, stop), open: !finite(e) && t.status === "running" });
      }
    }
    stretches.sort((a, b) => a.s - b.s);
    if (!stretches.length) { put(box, empty("timeline-empty", "The timeline appears once a trial starts: one lane per slot, one bar per trial run.")); return; }
    const lanes = [];
    for (const r of stretches) {
      let i = lanes.findIndex((free) => free <= r.s + 1e-6);
      if (i < 0) { i = lanes.length; lanes.push(0); }
      lanes[i] = r.e;
      r.lane = i;
    }
    const t0 = stretches[0].s, t1 = Math.max(t0 + 1, ...stretches.map((r) => r.e));
    const W = 900, L = 56, R = 14, T = 8, rowH = 22, H = T + lanes.length * rowH + 34;
    const x = (s) => L + (W - L - R) * (s - t0) / (t1 - t0);
    const chart = svg("svg", { class: "chart", id: "timeline", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "timeline of trials on slots" });
    lanes.forEach((_, i) => chart.append(svg("text", { x: L - 6, y: T + i * rowH + 15, "text-anchor": "end" }, `slot ${i + 1}`),
      svg("line", { x1: L, x2: W - R, y1: T + (i + 1) * rowH, y2: T + (i + 1) * rowH, stroke: "#eee" })));
    for (const r of stretches) {
      const t = r.t, i = r.lane, x0 = x(r.s), x1 = Math.max(x0 + 2, x(r.e));
      chart.append(svg("rect", { class: "bar", "data-rec": t.rec_id, x: x0, y: T + i * rowH + 3, width: x1 - x0, height: rowH - 6, rx: 2,
        fill: OUTCOME_COLORS[t.status] || "#444", onclick: () => ui.open(t.rec_id) },
        tip(`#${t.index} ${t.rec_id}: ${outcome(t)}, ${t.observed_budget} epochs; this run ${clock(r.s)} – ${r.open ? "now" : clock(r.e)}`)));
      if (x1 - x0 > 26) chart.append(svg("text", { x: x0 + 4, y: T + i * rowH + 15, class: "bar-label" }, `#${t.index}`));
    }
    for (const s of ticks(0, t1 - t0, 6)) chart.append(svg("text", { x: x(t0 + s), y: H - 14, "text-anchor": "middle" }, span(s)));
    chart.append(svg("text", { x: (L + W - R) / 2, y: H - 1, "text-anchor": "middle" }, `time since the first trial started (${clock(t0)})`));
    put(box, h("div", { class: "scroll" }, chart), h("p", { class: "muted" },
      `${lanes.length} slot(s) used. Each bar is one run of a trial's trainer (a promoted trial has one bar per rung it trained; running ones reach now), coloured by outcome; a gap in a lane is a slot left idle (trials waiting at a rung, or nothing to run).`));
  }

  // -- rungs and lineage ------------------------------------------------------------------

  function drawRungs(doc, box, ui) {
    const laddered = doc.trials.filter((t) => t.rung !== null && t.rung !== undefined);
    if (!laddered.length) { put(box, ); return; }
    const brackets = [...new Set(laddered.map((t) => t.bracket ?? 0))].sort((a, b) => a - b);
    const top = Math.max(...laddered.map((t) => t.rung));
    const head = h("tr", {}, h("th", {}, "bracket"), Array.from({ length: top + 1 }, (_, r) => h("th", {}, `rung ${r}`)));
    const rows = brackets.map((b) => h("tr", {}, h("th", {}, String(b)), Array.from({ length: top + 1 }, (_, r) => {
      const reached = laddered.filter((t) => (t.bracket ?? 0) === b && t.rung >= r);
      return h("td", {}, reached.map((t) => h("div", { title: outcome(t) }, dot(t.status), link(t, ui), ` ${fmt(t.score)}`)));
    })));
    put(box, h("h3", {}, "Rungs and brackets"),
      h("p", { class: "muted" }, "A trial listed under a rung reached it; under the next one, it was promoted."),
      h("table", { id: "rung-table" }, h("thead", {}, head), h("tbody", {}, rows)));
  }

  function link(t, ui) {
    return h("a", { href: "#", class: "trial-link", "data-rec": t.rec_id, onclick: (ev) => { ev.preventDefault(); ui.open(t.rec_id); } }, `#${t.index}`);
  }

  function lineageTree(trials, ui, root) {
    const byParent = new Map();
    for (const t of trials) {
      const key = trials.some((p) => p.rec_id === t.parent) ? t.parent : null;
      if (!byParent.has(key)) byParent.set(key, []);
      byParent.get(key).push(t);
    }
    const tree = (key, depth) => h("ul", { class: "lineage" }, (byParent.get(key) || []).map((t) =>
      h("li", {}, dot(t.status), link(t, ui), ` ${t.rec_id} · ${fmt(t.score)}`, depth < 50 ? tree(t.rec_id, depth + 1) : null)));
    return tree(root, 0);
  }

  function drawLineage(doc, box, ui) {
    if (!doc.trials.some((t) => t.parent)) { put(box, ); return; }
    put(box, h("h3", {}, "PBT lineage"), h("p", { class: "muted" }, "each trial under the one whose checkpoint it exploited"),
      h("div", { id: "lineage-tree" }, lineageTree(doc.trials, ui, null)));
  }

  // -- Pareto front (multi-objective runs) --------------------------------------------------

  // best_rec.json's pareto_front: entries naming a trial (rec_id) and its objective values
  // (`scores` or `values`, a mapping objective -> value). Every trial with values for two
  // objectives is drawn; those not on the front are grey.
  function drawPareto(doc, box, ui) {
    const br = (doc.analysis || {}).best_rec;
    const front = br && Array.isArray(br.pareto_front) ? br.pareto_front : null;
    if (!front || !front.length) { put(box, ); return; }
    const valuesOf = (entry) => entry.scores || entry.values || entry.objectives || {};
    const objectives = Object.keys(valuesOf(front[0])).filter((k) => finite(valuesOf(front[0])[k]));
    if (objectives.length < 2) { put(box, ); return; }
    const [ox, oy] = objectives;
    const onFront = new Set(front.map((f) => f.rec_id));
    const last = (t, k) => { const r = (t.results || []).filter((q) => finite(q[k])); return r.length ? r[r.length - 1][k] : null; };
    // Every trial's objectives as the result measured them (all_recs), else its last results.
    const measured = new Map((br.all_recs || []).filter((r) => r.objectives).map((r) => [r.rec_id, r.objectives]));
    const pts = doc.trials.map((t) => {
      const f = front.find((q) => q.rec_id === t.rec_id);
      const known = f ? valuesOf(f) : measured.get(t.rec_id) || {};
      return { t, vx: finite(known[ox]) ? known[ox] : last(t, ox), vy: finite(known[oy]) ? known[oy] : last(t, oy) };
    }).filter((p) => finite(p.vx) && finite(p.vy));
    const W = 520, H = 320, L = 60, R = 16, T = 12, B = 40;
    const xs = pts.map((p) => p.vx), ys = pts.map((p) => p.vy);
    // 6 % of each range as a margin: no mark sits on the frame.
    const pad = (lo, hi) => { const m = (hi - lo) * 0.06 || Math.abs(hi) * 0.06 || 1; return [lo - m, hi + m]; };
    const [x0, x1] = pad(Math.min(...xs), Math.max(...xs)), [y0, y1] = pad(Math.min(...ys), Math.max(...ys));
    const x = (v) => L + (W - L - R) * (v - x0) / (x1 - x0), y = (v) => T + (H - T - B) * (1 - (v - y0) / (y1 - y0));
    const chart = svg("svg", { class: "chart", id: "pareto", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Pareto front" });
    chart.append(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fff", stroke: "#bbb" }));
    for (const v of ticks(y0, y1, 5)) chart.append(svg("text", { x: L - 5, y: y(v) + 4, "text-anchor": "end" }, tickText(v)));
    for (const v of ticks(x0, x1, 5)) chart.append(svg("text", { x: x(v), y: H - B + 14, "text-anchor": "middle" }, tickText(v)));
    chart.append(svg("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, ox));
    chart.append(svg("text", { x: 12, y: (T + H - B) / 2, transform: `rotate(-90 12 ${(T + H - B) / 2})`, "text-anchor": "middle" }, oy));
    const frontPts = pts.filter((p) => onFront.has(p.t.rec_id)).sort((a, b) => a.vx - b.vx);
    if (frontPts.length > 1) chart.append(svg("polyline", { points: frontPts.map((p) => `${x(p.vx)},${y(p.vy)}`).join(" "), fill: "none", stroke: "#1f6fd1", "stroke-dasharray": "3 2" }));
    for (const p of pts) {
      const on = onFront.has(p.t.rec_id);
      chart.append(svg("circle", { class: on ? "mark front" : "mark dominated", "data-rec": p.t.rec_id, cx: x(p.vx), cy: y(p.vy), r: on ? 5 : 3.5,
        fill: on ? "#1f6fd1" : GREY, onclick: () => ui.open(p.t.rec_id) }, tip(`#${p.t.index}: ${ox} ${fmt(p.vx)}, ${oy} ${fmt(p.vy)}${on ? " (on the front)" : " (dominated)"}`)));
    }
    put(box, h("h3", {}, "Pareto front"), chart,
      h("p", { class: "muted" }, `${ox} against ${oy}: blue trials are on the Pareto front (none better on both), grey ones are dominated.`));
  }

  // -- trials table, comparison, failures, cost -------------------------------------------

  function drawTrials(doc, box, ui, redraw) {
    const e = doc.experiment;
    if (!doc.trials.length) { put(box, empty("no-trials", "No trial has started yet: the table fills as the search proposes trials.")); return; }
    const best = (e.progress || {}).best && e.progress.best.rec_id;
    const shown = Object.keys(ui.brush).length ? brushed(doc, ui) : doc.trials;
    const head = h("tr", {}, ["compare", "trial", "state", "rung / bracket", "epochs", e.metric, "started", "outcome"].map((c) => h("th", {}, c)));
    const now = ui.now();
    const rows = shown.map((t) => h("tr", { "data-rec": t.rec_id, class: t.rec_id === best ? "best" : "" },
      h("td", {}, h("input", { type: "checkbox", class: "pick", "data-rec": t.rec_id, checked: ui.selected.includes(t.rec_id) || null,
        title: "compare (2 to 4 trials)", onchange: (ev) => {
          ui.selected = ui.selected.filter((r) => r !== t.rec_id);
          if (ev.target.checked) ui.selected = [...ui.selected, t.rec_id].slice(-4);
          redraw();
        } })),
      h("td", {}, link(t, ui), " ", h("span", { class: "mono" }, t.rec_id)),
      h("td", { class: "status" }, dot(t.status), t.status),
      h("td", {}, t.rung === null || t.rung === undefined ? "–" : `${t.rung} / ${fmt(t.bracket)}`),
      h("td", { class: "num" }, `${t.observed_budget}/${t.budget}`),
      h("td", { class: "num" }, fmt(t.score)),
      h("td", {}, t.started_at ? when(t.started_at, now) : "–"),
      h("td", {}, outcome(t), t.hint ? h("div", { class: "hint" }, t.hint) : null)));
    put(box, 
      h("p", { class: "muted", id: "trials-note" }, shown.length === doc.trials.length
        ? `${doc.trials.length} trials. Click a trial to open its page; tick 2 to 4 to compare them.`
        : `${shown.length} of ${doc.trials.length} trials: those within the brushed ranges of the parallel coordinates.`),
      h("table", { id: "trials" }, h("thead", {}, head), h("tbody", {}, rows)));
  }

  function drawCompare(doc, box, ui) {
    const picked = ui.selected.map((r) => doc.trials.find((t) => t.rec_id === r)).filter(Boolean);
    if (picked.length < 2) {
      put(box, empty("compare-empty", picked.length ? "Tick one more trial in the table to compare." : "Tick 2 to 4 trials in the table to compare their hyperparameters and curves here."));
      return;
    }
    const color = new Map(picked.map((t, i) => [t.rec_id, COMPARE_COLORS[i]]));
    const names = [...new Set(picked.flatMap((t) => Object.keys(t.params || {})))].sort();
    const differs = (k) => new Set(picked.map((t) => JSON.stringify((t.params || {})[k]))).size > 1;
    const rows = [["outcome", ...picked.map(outcome)], [doc.experiment.metric, ...picked.map((t) => fmt(t.score))],
      ["epochs", ...picked.map((t) => String(t.observed_budget))], ...names.sort((a, b) => differs(b) - differs(a)).map((k) => [k, ...picked.map((t) => fmt((t.params || {})[k]))])];
    put(box, 
      curveChart(doc, picked, { id: "compare-curves", rungs: false, colorOf: (t) => color.get(t.rec_id), open: ui.open }),
      h("table", { id: "compare-table" }, h("thead", {}, h("tr", {}, h("th", {}, ""), picked.map((t) =>
        h("th", { style: `color:${color.get(t.rec_id)}` }, link(t, ui), ` ${t.rec_id.slice(0, 8)}`)))),
      h("tbody", {}, rows.map(([k, ...vs]) => h("tr", { class: names.includes(k) && differs(k) ? "differs" : "" }, h("th", {}, nameNode(k)), vs.map((v) => h("td", {}, v)))))),
      h("p", { class: "muted" }, "Rows that differ between the trials come first (highlighted)."));
  }

  function drawFailures(doc, box, ui) {
    const failed = doc.trials.filter((t) => t.failure_class || t.status === "failed");
    if (!failed.length) { put(box, h("p", { class: "muted", id: "no-failures" }, "No trial failed.")); return; }
    const groups = new Map();
    for (const t of failed) {
      const k = t.failure_class || "error";
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(t);
    }
    put(box, h("table", { id: "failures" }, h("thead", {}, h("tr", {}, ["class", "trials", "example message", "what to do"].map((c) => h("th", {}, c)))),
      h("tbody", {}, [...groups.entries()].sort((a, b) => b[1].length - a[1].length).map(([k, ts]) =>
        h("tr", {}, h("td", {}, k), h("td", {}, `${ts.length}: `, ts.slice(0, 8).map((t) => [link(t, ui), " "]), ts.length > 8 ? "…" : null),
          h("td", { class: "mono" }, (ts.find((t) => t.failure_message) || {}).failure_message || "(no message)"),
          h("td", {}, ts[0].hint || ""))))));
  }

  function drawCost(doc, box) {
    const e = doc.experiment, p = e.progress || {};
    const budget = p.epoch_budget || (e.settings || {}).max_epochs;
    const spent = doc.trials.reduce((s, t) => s + t.observed_budget, 0);
    if (!budget || !doc.trials.length) { put(box, empty("cost-empty", "The cost appears once trials have trained.")); return; }
    const full = doc.trials.length * budget;
    const seconds = doc.trials.filter((t) => t.started_at && t.ended_at).reduce((s, t) => s + (t.ended_at - t.started_at), 0);
    put(box, h("p", { id: "cost" }, `${doc.trials.length} trials trained ${spent} epochs: ${Math.round(100 * spent / full)}% of the ${full} epochs that ${doc.trials.length} full-budget trials of ${budget} epochs would cost` +
      `${seconds > 0 ? `; trial time summed over trials: ${span(seconds)}` : ""}.`));
  }

  // -- the dashboard ----------------------------------------------------------------------

  const SECTIONS = [
    ["history", "Optimization history"], ["importance", "Hyperparameter importance"],
    ["parallel", "Parallel coordinates"], ["slices", "Slice plots"], ["timeline", "Timeline of slots and trials"],
    ["trials", "Trials"], ["compare", "Compare trials"], ["failures", "Failures"], ["cost", "Cost"],
  ];

  // Every view of one experiment, redrawn in place by update(doc); what the user set (brushes,
  // trials ticked for comparison, folded sections) survives redraws.
  class Dashboard {
    constructor(root, options) {
      this.ui = { brush: {}, selected: [], bestOpen: false, dragging: false, controls: Boolean(options.controls),
                  open: options.open, now: options.now || (() => Date.now() / 1000) };
      this.doc = null;
      const box = (id) => h("div", { id });
      this.els = { header: box("v-header"), actions: box("v-actions"), curves: box("curves-box"), best: box("best"),
                   bestTitle: h("h3", { id: "best-title" }, "Best trial so far"), rungs: box("rungs"), lineage: box("lineage"), pareto: box("v-pareto") };
      for (const [id] of SECTIONS) this.els[id] = box(`${id}-box`);
      put(root, this.els.header, this.els.actions,
        h("div", { class: "grid" }, h("div", {}, h("h3", {}, "Learning curves"), this.els.curves), h("div", {}, this.els.bestTitle, this.els.best)),
        this.els.pareto,
        ...SECTIONS.map(([id, title]) => h("details", { class: "view", id: `v-${id}`, open: true }, h("summary", {}, title), this.els[id])),
        this.els.rungs, this.els.lineage);
    }

    update(doc) {
      this.doc = doc;
      this.draw();
    }

    draw() {
      const doc = this.doc, ui = this.ui, els = this.els, now = ui.now();
      if (!doc) return;
      const redraw = () => this.draw();
      drawHeader(doc, els.header, now, ui);
      drawCurves(doc, els.curves, ui);
      drawBest(doc, els.best, els.bestTitle, ui);
      drawPareto(doc, els.pareto, ui);
      drawHistory(doc, els.history, ui);
      drawImportance(doc, els.importance);
      if (!ui.dragging) drawParallel(doc, els.parallel, ui, redraw);
      drawSlices(doc, els.slices, ui);
      drawTimeline(doc, els.timeline, ui, now);
      drawTrials(doc, els.trials, ui, redraw);
      drawCompare(doc, els.compare, ui);
      drawFailures(doc, els.failures, ui);
      drawCost(doc, els.cost);
      drawRungs(doc, els.rungs, ui);
      drawLineage(doc, els.lineage, ui);
    }
  }

  // -- one trial's page -------------------------------------------------------------------

  // `details`: GET .../trials/{rec_id}/details (null while it loads).
  function trialPage(doc, trial, details, ui) {
    const e = doc.experiment, now = ui.now();
    const pre = (id, lines, none) => (lines && lines.length ? h("pre", { id, class: "log" }, lines.join("\n")) : empty(`${id}-empty`, none));
    const parent = doc.trials.find((t) => t.rec_id === trial.parent);
    const children = doc.trials.filter((t) => t.parent === trial.rec_id);
    const ancestors = [];
    for (let p = parent; p && ancestors.length < 50; p = doc.trials.find((t) => t.rec_id === p.parent)) ancestors.unshift(p);
    const facts = [["outcome", outcome(trial)], [e.metric, fmt(trial.score)], ["epochs", `${trial.observed_budget} of ${trial.budget}`],
      ["rung / bracket", trial.rung === null || trial.rung === undefined ? "–" : `${trial.rung} / ${fmt(trial.bracket)}`],
      ["started", trial.started_at ? h("span", { title: clock(trial.started_at) }, clock(trial.started_at)) : "not yet"],
      ["ended", trial.ended_at ? clock(trial.ended_at) : "–"],
      ["duration", trial.started_at ? span((trial.ended_at || now) - trial.started_at) : "–"], ["retries", String(trial.retries || 0)]];
    if (trial.failure_message) facts.push(["failure", trial.failure_message]);
    if (trial.hint) facts.push(["what to do", trial.hint]);
    const kv = (rows, id) => h("table", { class: "kv", id }, h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", {}, nameNode(k)), h("td", {}, v)))));
    const ckpts = details && details.checkpoints.length ? h("table", { id: "trial-checkpoints" }, h("thead", {}, h("tr", {}, ["file", "epochs", "step", "size", "ends an epoch"].map((c) => h("th", {}, c)))),
      h("tbody", {}, details.checkpoints.map((c) => h("tr", {}, h("td", { class: "mono" }, c.name), h("td", { class: "num" }, c.epochs), h("td", { class: "num" }, c.step),
        h("td", { class: "num" }, `${(c.bytes / 1048576).toFixed(1)} MiB`), h("td", {}, c.finished_epoch ? "yes" : "no (interrupted epoch)")))))
      : empty("trial-checkpoints-empty", details ? "No checkpoint in its folder (not written yet, or removed by keep_checkpoints)." : "loading…");
    return h("div", { id: "trial-page", "data-rec": trial.rec_id },
      h("h2", {}, `Trial #${trial.index} `, h("span", { class: "mono" }, trial.rec_id), " ", h("span", { class: "state", style: `background:${OUTCOME_COLORS[trial.status] || "#ddd"};color:#fff` }, trial.status)),
      h("div", { class: "grid" },
        h("div", {}, h("h3", {}, "Learning curve"), points(trial, e.metric).length
          ? curveChart(doc, [trial], { id: "trial-curve", rungs: false, colorOf: () => OUTCOME_COLORS[trial.status] || "#444" })
          : empty("trial-curve-empty", `The curve appears after this trial's first validated epoch.`)),
        h("div", {}, h("h3", {}, "Summary"), kv(facts, "trial-facts"))),
      h("h3", {}, "Hyperparameters"), kv(Object.entries(trial.params || {}).sort().map(([k, v]) => [k, fmt(v)]), "trial-params"),
      h("h3", {}, "Status lines (TAO status.json, newest last)"), pre("trial-status", details && details.status_lines, details ? "No status line yet." : "loading…"),
      h("h3", {}, "Log tail (train.log)"), pre("trial-log", details && details.log_tail, details ? "The log is empty so far." : "loading…"),
      h("h3", {}, "Checkpoints"), ckpts,
      h("h3", {}, "Lineage"), parent || children.length
        ? h("div", { id: "trial-lineage" }, ancestors.length ? h("p", {}, "started from ", ancestors.map((a, i) => [i ? " → " : "", link(a, ui)]), " → this trial") : null,
          children.length ? h("p", {}, "exploited by ", children.map((c, i) => [i ? ", " : "", link(c, ui)])) : null)
        : empty("trial-lineage-empty", "No lineage: this trial neither started from another's checkpoint nor handed its own on (PBT only)."),
      h("details", { id: "trial-spec-box" }, h("summary", {}, "Spec (the file the trainer ran with, secrets hidden)"),
        details && details.spec ? h("pre", { id: "trial-spec", class: "log" }, details.spec) : empty("trial-spec-empty", details ? "No spec written yet." : "loading…")));
  }

  // -- the report (a file opened from disk) -------------------------------------------------

  // Draws the embedded document; a trial opens at #trial/<rec_id>, the back link returns.
  function report(doc) {
    const main = document.getElementById("main");
    const generated = doc.generated || Date.now() / 1000;
    const home = h("div", { id: "dashboard" });
    const open = (rec) => { location.hash = `#trial/${rec}`; };
    const board = new Dashboard(home, { open, now: () => generated });
    board.update(doc);
    put(board.els.actions, h("p", { class: "muted", id: "report-stamp" },
      `automl report, a snapshot of ${doc.experiment.workspace || "the workspace"} taken ${clock(generated)}; every view works offline, from this file alone.`));
    const show = () => {
      const m = location.hash.match(/^#trial\/([\w-]+)$/);
      const trial = m && doc.trials.find((t) => t.rec_id === m[1]);
      if (trial) {
        put(main, h("p", {}, h("a", { href: "#", id: "back" }, "← the experiment")),
          trialPage(doc, trial, (doc.details || {})[trial.rec_id] || { spec: "", status_lines: [], log_tail: [], checkpoints: [] }, board.ui));
        window.scrollTo(0, 0);
      } else {
        put(main, home);
      }
    };
    window.addEventListener("hashchange", show);
    show();
    document.title = `automl report: ${doc.experiment.name}`;
  }

  return { Dashboard, trialPage, report, h, fmt, clock, nameNode, dot, OUTCOME_COLORS };
})();

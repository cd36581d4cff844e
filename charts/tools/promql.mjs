// promql.mjs: gathers every PromQL expression the chart ships outside the rules file, for
// promtool (scripts/chart-check), and checks the metric names of all of them.
//
//   node charts/tools/promql.mjs --tools build/tools --repo REPO --out RULES.yaml DASHBOARD.json... RENDERED.yaml...
//
// Expressions: the Prometheus targets and label_values() variables of the Grafana dashboards;
// from manifests rendered by `helm template`: the queries of KEDA prometheus triggers, the
// external metric (name and selector) of HPAs, and the rules of PrometheusRules (extraRules
// included). Grafana's variables are replaced by sample values ($__rate_interval by 5m, others
// by their default or "x") and every expression is written to RULES.yaml as a recording rule,
// which `promtool check rules` then parses.
//
// Metric names: every goodwill_* name in those expressions and in charts/goodwill/files/alerts.yaml
// must be one the daemons register (a "goodwill_..." string in lib/ or services/), with the
// _bucket/_sum/_count of histograms, or one of the names being added by others (PENDING).
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const PENDING = ["goodwill_kafka_consumer_lag", "goodwill_build_info"];

const argv = process.argv.slice(2);
let tools = "";
let repo = "";
let out = "";
const inputs = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--tools") tools = argv[++i];
  else if (argv[i] === "--repo") repo = argv[++i];
  else if (argv[i] === "--out") out = argv[++i];
  else inputs.push(argv[i]);
}
if (!tools || !repo || !out) {
  console.error("usage: promql.mjs --tools DIR --repo DIR --out FILE inputs...");
  process.exit(2);
}
const nm = path.join(tools, "node_modules");
const YAML = (await import(pathToFileURL(path.join(nm, "yaml/dist/index.js")).href)).default;

const exprs = []; // {where, expr}

function substitute(expr, defaults) {
  return expr
    .replace(/\$__rate_interval|\$\{__rate_interval\}/g, "5m")
    .replace(/\$__interval|\$\{__interval\}/g, "1m")
    .replace(/\$__range|\$\{__range\}/g, "1h")
    .replace(/\$\{(\w+)(:\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (m, a, _f, b, c) => {
      const name = a || b || c;
      return defaults[name] ?? "x";
    });
}

function fromDashboard(file) {
  const d = JSON.parse(fs.readFileSync(file, "utf8"));
  const defaults = {};
  for (const v of d.templating?.list || []) {
    const cur = v.current?.value;
    if (typeof cur === "string" && cur && !cur.startsWith("$")) defaults[v.name] = cur;
  }
  const base = path.basename(file);
  const walk = (panels) => {
    for (const p of panels || []) {
      walk(p.panels);
      for (const t of p.targets || []) {
        const ds = t.datasource?.type ?? p.datasource?.type ?? "prometheus";
        if (ds !== "prometheus") continue;
        if (!t.expr) throw new Error(`${base}: panel "${p.title}" has a Prometheus target without expr`);
        exprs.push({ where: `${base}: panel "${p.title}" ${t.refId}`, expr: substitute(t.expr, defaults) });
      }
    }
  };
  walk(d.panels);
  for (const v of d.templating?.list || []) {
    if (v.type !== "query" || v.datasource?.type !== "prometheus") continue;
    const q = typeof v.query === "string" ? v.query : v.query?.query;
    const m = /^label_values\((.*),\s*\w+\)\s*$/.exec(q || "");
    if (!m) throw new Error(`${base}: variable ${v.name}: only label_values(selector, label) is expected, got ${q}`);
    exprs.push({ where: `${base}: variable ${v.name}`, expr: substitute(m[1], defaults) });
  }
}

function fromManifests(file) {
  const base = path.basename(file);
  for (const d of YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))) {
    const doc = d.toJS();
    if (!doc) continue;
    const name = `${base}: ${doc.kind} ${doc.metadata?.name}`;
    if (doc.kind === "ScaledObject") {
      for (const t of doc.spec?.triggers || [])
        if (t.type === "prometheus") exprs.push({ where: `${name} trigger`, expr: t.metadata.query });
    }
    if (doc.kind === "HorizontalPodAutoscaler") {
      for (const m of doc.spec?.metrics || []) {
        if (m.type !== "External") continue;
        const labels = Object.entries(m.external.metric.selector?.matchLabels || {}).map(([k, v]) => `${k}="${v}"`);
        exprs.push({ where: `${name} external metric`, expr: `${m.external.metric.name}{${labels.join(", ")}}` });
      }
    }
    if (doc.kind === "PrometheusRule") {
      for (const g of doc.spec?.groups || [])
        for (const r of g.rules || []) exprs.push({ where: `${name} ${r.alert || r.record}`, expr: String(r.expr) });
    }
  }
}

for (const f of inputs) {
  if (f.endsWith(".json")) fromDashboard(f);
  else fromManifests(f);
}
if (exprs.length === 0) {
  console.error("promql: no expressions found");
  process.exit(1);
}

// --- metric names --------------------------------------------------------------------------
const known = new Set(PENDING);
const walkSources = (dir) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walkSources(p);
    else if (/\.[ch]$/.test(e.name))
      for (const m of fs.readFileSync(p, "utf8").matchAll(/"(goodwill_[a-z0-9_]+)"/g)) known.add(m[1]);
  }
};
walkSources(path.join(repo, "lib"));
walkSources(path.join(repo, "services"));

function namesIn(expr) {
  const names = new Set();
  // {__name__=~"goodwill_(a|b)_c"}: each alternative
  for (const m of expr.matchAll(/goodwill_\(([a-z0-9_|]+)\)([a-z0-9_]*)/g))
    for (const alt of m[1].split("|")) names.add(`goodwill_${alt}${m[2]}`);
  for (const m of expr.replace(/goodwill_\([^)]*\)[a-z0-9_]*/g, "").matchAll(/\bgoodwill_[a-z0-9_]+/g)) names.add(m[0]);
  return names;
}
const isKnown = (n) => known.has(n) || known.has(n.replace(/_(bucket|sum|count)$/, ""));

const alertsFile = path.join(repo, "charts/goodwill/files/alerts.yaml");
const alertExprs = [];
for (const g of YAML.parse(fs.readFileSync(alertsFile, "utf8")).groups)
  for (const r of g.rules) alertExprs.push({ where: `alerts.yaml ${r.alert || r.record}`, expr: String(r.expr) });

const problems = [];
for (const e of [...exprs, ...alertExprs])
  for (const n of namesIn(e.expr)) if (!isKnown(n)) problems.push(`${e.where}: no daemon exports ${n}`);

// --- the rules file for promtool ---------------------------------------------------------------
const rules = exprs.map((e, i) => ({ record: `goodwill_promql_check:expr_${i}`, expr: e.expr }));
fs.writeFileSync(out, YAML.stringify({ groups: [{ name: "goodwill-dashboard-and-autoscalers", rules }] }));
const index = exprs.map((e, i) => `expr_${i}: ${e.where}`).join("\n");
fs.writeFileSync(out.replace(/\.yaml$/, ".index"), `${index}\n`);

if (problems.length) {
  console.error(`promql: unknown metric names:\n  ${[...new Set(problems)].join("\n  ")}`);
  process.exit(1);
}
console.error(`promql: ${exprs.length} expressions collected (index in ${out.replace(/\.yaml$/, ".index")}); ` +
  `metric names checked against ${known.size} names the daemons register or are adding`);

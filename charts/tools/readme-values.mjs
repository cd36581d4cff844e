// readme-values.mjs: the values table of charts/goodwill/README.md, generated from the
// `## @param <key> <description>` comments of values.yaml (the convention of Bitnami's
// readme-generator), with each default read from the parsed values.
//
//   node charts/tools/readme-values.mjs --tools build/tools --write CHART   rewrite the table
//   node charts/tools/readme-values.mjs --tools build/tools --check CHART   fail when stale
//
// Every key of values.yaml must be documented by a @param on itself or on an ancestor, and
// every @param must name a key that exists. The table sits between the README's markers
// <!-- values:start --> and <!-- values:end -->.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const argv = process.argv.slice(2);
let tools = "";
let mode = "";
let chart = "";
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--tools") tools = argv[++i];
  else if (argv[i] === "--write" || argv[i] === "--check") {
    mode = argv[i];
    chart = argv[++i];
  }
}
if (!tools || !mode || !chart) {
  console.error("usage: readme-values.mjs --tools DIR (--write|--check) CHART");
  process.exit(2);
}
const YAML = (await import(pathToFileURL(path.join(tools, "node_modules/yaml/dist/index.js")).href)).default;

const text = fs.readFileSync(path.join(chart, "values.yaml"), "utf8");
const values = YAML.parse(text);
const problems = [];

const rows = [];
const documented = new Set();
for (const line of text.split("\n")) {
  const section = /^\s*## @section (.*)$/.exec(line);
  if (section) {
    rows.push({ section: section[1].trim() });
    continue;
  }
  const m = /^\s*## @param (\S+) (.*)$/.exec(line);
  if (!m) continue;
  const key = m[1];
  let v = values;
  for (const part of key.split(".")) {
    if (v === null || typeof v !== "object" || !(part in v)) {
      problems.push(`@param ${key}: no such key in values.yaml`);
      v = undefined;
      break;
    }
    v = v[part];
  }
  documented.add(key);
  rows.push({ key, description: m[2].trim(), value: v });
}

const leaves = (obj, prefix) => {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const covered = [...documented].some((d) => key === d || key.startsWith(`${d}.`));
    if (covered) continue;
    if (v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) leaves(v, key);
    else problems.push(`${key}: not documented by a ## @param line`);
  }
};
leaves(values, "");

const cell = (s) => String(s).replace(/\|/g, "\\|").replace(/\n/g, " ");
const show = (v) => {
  if (v === undefined) return "";
  if (typeof v === "string") return v === "" ? '`""`' : `\`${cell(v.trim())}\``;
  return `\`${cell(JSON.stringify(v))}\``;
};
let table = "";
for (const r of rows) {
  if (r.section) {
    table += `\n### ${r.section}\n\n| Key | Description | Default |\n|---|---|---|\n`;
  } else {
    table += `| \`${r.key}\` | ${cell(r.description)} | ${show(r.value)} |\n`;
  }
}
const readmePath = path.join(chart, "README.md");
const readme = fs.readFileSync(readmePath, "utf8");
const start = "<!-- values:start -->";
const end = "<!-- values:end -->";
const a = readme.indexOf(start);
const b = readme.indexOf(end);
if (a < 0 || b < a) {
  console.error(`${readmePath}: markers ${start} and ${end} not found`);
  process.exit(1);
}
const next = `${readme.slice(0, a + start.length)}\n${table}\n${readme.slice(b)}`;
if (problems.length) {
  console.error(`values.yaml:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
if (mode === "--write") {
  fs.writeFileSync(readmePath, next);
  console.error(`${readmePath}: values table written (${rows.filter((r) => r.key).length} keys)`);
} else if (next !== readme) {
  console.error(`${readmePath}: the values table differs from values.yaml`);
  process.exit(1);
} else {
  console.error(`${readmePath}: values table up to date (${rows.filter((r) => r.key).length} keys)`);
}

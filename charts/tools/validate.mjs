// validate.mjs: checks manifests rendered by `helm template` (scripts/chart-check).
//
//   node charts/tools/validate.mjs --tools build/tools [--binaries build] FILE.yaml...
//   node charts/tools/validate.mjs --tools build/tools --self-test charts/tools/fixtures
//
// 1. Schema: every object against the OpenAPI schema of its apiVersion and kind, from the pinned
//    npm packages kubernetes-models 5.1.0 (the core API) and @kubernetes-models/prometheus-operator
//    6.0.0 and @kubernetes-models/keda 2.0.0 (ServiceMonitor, PodMonitor, PrometheusRule,
//    ScaledObject: those packages are generated from the projects' own CRDs). Unknown fields
//    are errors too, as `kubectl --validate=strict` would make them: the packages' compiled
//    validators read every field their schema knows, so a field of the manifest that none of
//    them read is unknown (objects whose keys the validator enumerates, such as labels, and
//    objects whose schema leaves them free, are not judged).
// 2. Policy, for every container of every workload: resources (requests.cpu, requests.memory,
//    limits.memory); liveness and readiness probes, the liveness on /healthz (never a check of
//    Kafka or Redis); securityContext runAsNonRoot, readOnlyRootFilesystem, no privilege
//    escalation, not privileged, capabilities drop ALL, seccompProfile RuntimeDefault (container
//    or pod); no service account token; a termination grace that covers the preStop sleep plus
//    the daemon's --shutdown-grace. `helm test` pods run to completion: probes are not required
//    of them, the rest is. Across objects: one autoscaler at most per Deployment (never an HPA
//    and a ScaledObject), every Service, PDB and NetworkPolicy selects pods of a Deployment, and
//    probes name ports the container has.
// 3. With --binaries: every goodwill container's configuration (its GOODWILL_* variables and
//    flags, Secret values replaced by placeholders) is given to the real daemon with --help last:
//    the daemon parses and validates all of it and exits 0, or names what it refuses.
//
// --self-test DIR: each DIR/*.yaml holds manifests with `# expect: <text>` lines; each text must
// appear among the problems found, and a file without problems fails the self-test.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const argv = process.argv.slice(2);
let tools = "";
let binaries = "";
let selfTest = "";
const files = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--tools") tools = argv[++i];
  else if (argv[i] === "--binaries") binaries = argv[++i];
  else if (argv[i] === "--self-test") selfTest = argv[++i];
  else files.push(argv[i]);
}
if (!tools) {
  console.error("usage: validate.mjs --tools DIR [--binaries DIR] FILE... | --self-test DIR");
  process.exit(2);
}
const nm = path.join(tools, "node_modules");
const YAML = (await import(pathToFileURL(path.join(nm, "yaml/dist/index.js")).href)).default;

// --- schema ----------------------------------------------------------------------------------

function modelPath(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "") return path.join(nm, "kubernetes-models", version, `${kind}.js`);
  if (group === "monitoring.coreos.com")
    return path.join(nm, "@kubernetes-models/prometheus-operator", group, version, `${kind}.js`);
  if (group === "keda.sh") return path.join(nm, "@kubernetes-models/keda", group, version, `${kind}.js`);
  return path.join(nm, "kubernetes-models", group, version, `${kind}.js`);
}

const modelCache = new Map();
async function modelOf(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (!modelCache.has(key)) {
    const file = modelPath(apiVersion, kind);
    let cls = null;
    if (fs.existsSync(file)) cls = (await import(pathToFileURL(file).href))[kind] || null;
    modelCache.set(key, cls);
  }
  return modelCache.get(key);
}

// Wraps value so that every property the validator reads, and every object whose keys it
// enumerates, is recorded.
function track(value, where, records) {
  if (value === null || typeof value !== "object") return value;
  const rec = { where, value, read: new Set(), enumerated: false };
  records.push(rec);
  const children = new Map();
  return new Proxy(value, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver);
      if (typeof key !== "string") return v;
      rec.read.add(key);
      if (v !== null && typeof v === "object" && Object.prototype.hasOwnProperty.call(target, key)) {
        if (!children.has(key)) children.set(key, track(v, `${where}/${key}`, records));
        return children.get(key);
      }
      return v;
    },
    has(target, key) {
      if (typeof key === "string") rec.read.add(key);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      rec.enumerated = true;
      return Reflect.ownKeys(target);
    },
  });
}

// API versions that kubernetes-models still carries but that Kubernetes no longer serves to the
// chart's kubeVersion (>= 1.25): refused, whatever their schema says.
const REMOVED = {
  "extensions/v1beta1": "1.22", "apps/v1beta1": "1.16", "apps/v1beta2": "1.16",
  "policy/v1beta1": "1.25", "batch/v1beta1": "1.25", "autoscaling/v2beta1": "1.25",
  "autoscaling/v2beta2": "1.26", "networking.k8s.io/v1beta1": "1.22",
  "rbac.authorization.k8s.io/v1beta1": "1.22", "flowcontrol.apiserver.k8s.io/v1beta2": "1.29",
};

async function schemaProblems(doc) {
  if (REMOVED[doc.apiVersion])
    return [`schema: apiVersion ${doc.apiVersion} was removed in Kubernetes ${REMOVED[doc.apiVersion]}`];
  const cls = await modelOf(doc.apiVersion, doc.kind);
  if (!cls) return [`no schema for apiVersion ${doc.apiVersion} kind ${doc.kind} (unknown or removed API)`];
  const records = [];
  const proxy = track(doc, "", records);
  const out = [];
  try {
    cls.prototype.validate.call(proxy);
  } catch (e) {
    out.push(`schema: ${e.message}`);
    return out;
  }
  for (const r of records) {
    if (Array.isArray(r.value) || r.enumerated || r.read.size === 0) continue;
    for (const k of Object.keys(r.value)) {
      if (!r.read.has(k)) out.push(`schema: unknown field ${r.where}/${k}`);
    }
  }
  return out;
}

// --- policy ----------------------------------------------------------------------------------

const WORKLOADS = new Set(["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"]);

function podSpecOf(doc) {
  if (doc.kind === "Pod") return doc.spec;
  if (doc.kind === "CronJob") return doc.spec?.jobTemplate?.spec?.template?.spec;
  return doc.spec?.template?.spec;
}

function podLabelsOf(doc) {
  if (doc.kind === "Pod") return doc.metadata?.labels || {};
  return doc.spec?.template?.metadata?.labels || {};
}

function isTestHook(doc) {
  const hook = doc.metadata?.annotations?.["helm.sh/hook"] || "";
  return hook.split(",").map((s) => s.trim()).some((h) => h === "test" || h === "test-success");
}

function durationSeconds(text) {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(String(text || ""));
  if (!m) return null;
  const n = Number(m[1]);
  return { ms: n / 1000, s: n, m: n * 60, h: n * 3600, undefined: n / 1000 }[m[2]];
}

function policyProblems(doc) {
  const out = [];
  if (!WORKLOADS.has(doc.kind)) return out;
  const spec = podSpecOf(doc);
  if (!spec) return [`policy: no pod template`];
  const test = isTestHook(doc);
  const psc = spec.securityContext || {};
  if (psc.runAsNonRoot !== true) out.push("policy: pod securityContext.runAsNonRoot must be true");
  if (psc.runAsUser === 0) out.push("policy: pod securityContext.runAsUser must not be 0");
  if (spec.automountServiceAccountToken !== false)
    out.push("policy: automountServiceAccountToken must be false (the daemons never call the API)");
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) out.push("policy: host namespaces are not allowed");
  const containers = [...(spec.initContainers || []), ...(spec.containers || [])];
  if (containers.length === 0) out.push("policy: no containers");
  for (const c of containers) {
    const at = `container ${c.name}`;
    const r = c.resources || {};
    for (const [where, key] of [["requests", "cpu"], ["requests", "memory"], ["limits", "memory"]]) {
      if (!r[where] || r[where][key] === undefined || r[where][key] === null || r[where][key] === "")
        out.push(`policy: ${at}: resources.${where}.${key} is missing`);
    }
    const sc = c.securityContext || {};
    const runAsNonRoot = sc.runAsNonRoot ?? psc.runAsNonRoot;
    if (runAsNonRoot !== true) out.push(`policy: ${at}: runAsNonRoot must be true`);
    if ((sc.runAsUser ?? psc.runAsUser) === 0) out.push(`policy: ${at}: runAsUser must not be 0`);
    if (sc.readOnlyRootFilesystem !== true) out.push(`policy: ${at}: readOnlyRootFilesystem must be true`);
    if (sc.allowPrivilegeEscalation !== false) out.push(`policy: ${at}: allowPrivilegeEscalation must be false`);
    if (sc.privileged === true) out.push(`policy: ${at}: privileged must not be true`);
    const drop = sc.capabilities?.drop || [];
    if (!drop.includes("ALL")) out.push(`policy: ${at}: capabilities.drop must include ALL`);
    if ((sc.capabilities?.add || []).length > 0) out.push(`policy: ${at}: capabilities.add must be empty`);
    const seccomp = (sc.seccompProfile || psc.seccompProfile || {}).type;
    if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost")
      out.push(`policy: ${at}: seccompProfile.type must be RuntimeDefault (container or pod)`);
    const isInit = (spec.initContainers || []).includes(c);
    if (test || isInit) continue;
    const portNames = new Set((c.ports || []).map((p) => p.name).filter(Boolean));
    for (const probe of ["livenessProbe", "readinessProbe"]) {
      const p = c[probe];
      if (!p) {
        out.push(`policy: ${at}: ${probe} is missing`);
        continue;
      }
      const port = p.httpGet?.port ?? p.tcpSocket?.port ?? p.grpc?.port;
      if (typeof port === "string" && !portNames.has(port))
        out.push(`policy: ${at}: ${probe} names port "${port}", which the container does not have`);
    }
    const lp = c.livenessProbe?.httpGet?.path;
    if (c.livenessProbe?.httpGet && lp !== "/healthz")
      out.push(`policy: ${at}: livenessProbe must be GET /healthz (loop alive, never Kafka or Redis), not ${lp}`);
    const rp = c.readinessProbe?.httpGet?.path;
    if (c.readinessProbe?.httpGet && rp !== "/readyz") out.push(`policy: ${at}: readinessProbe must be GET /readyz, not ${rp}`);
    const env = Object.fromEntries((c.env || []).filter((e) => "value" in e).map((e) => [e.name, e.value]));
    const grace = durationSeconds(env.GOODWILL_SHUTDOWN_GRACE);
    if ((c.args || [])[0]?.startsWith("goodwill-") && grace === null)
      out.push(`policy: ${at}: GOODWILL_SHUTDOWN_GRACE is not set`);
    const sleep = c.lifecycle?.preStop?.exec?.command?.[1] ?? c.lifecycle?.preStop?.sleep?.seconds ?? 0;
    const tgps = spec.terminationGracePeriodSeconds ?? 30;
    if (grace !== null && tgps < Number(sleep) + grace)
      out.push(`policy: ${at}: terminationGracePeriodSeconds ${tgps} < preStop ${sleep} s + shutdown grace ${grace} s: the drain would be cut short`);
    if (c.name === "ingest" && !c.lifecycle?.preStop)
      out.push(`policy: ${at}: ingest needs a preStop sleep so that it leaves the endpoints before it drains`);
  }
  return out;
}

function matches(selector, labels) {
  if (!selector) return false;
  const ml = selector.matchLabels || (selector.matchExpressions ? {} : selector);
  for (const [k, v] of Object.entries(ml)) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions || []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    if (e.operator === "In" && !(has && e.values.includes(labels[e.key]))) return false;
    if (e.operator === "NotIn" && has && e.values.includes(labels[e.key])) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

function crossProblems(docs) {
  const out = [];
  const deployments = docs.filter((d) => d.kind === "Deployment");
  const podsOf = (sel) => deployments.filter((d) => matches(sel, podLabelsOf(d)));
  const scalers = new Map();
  for (const d of docs) {
    if (d.kind === "HorizontalPodAutoscaler" || d.kind === "ScaledObject") {
      const target = d.spec?.scaleTargetRef?.name;
      if (!deployments.some((x) => x.metadata.name === target))
        out.push(`cross: ${d.kind} ${d.metadata.name} scales ${target}, which is not a Deployment of the chart`);
      if (!scalers.has(target)) scalers.set(target, []);
      scalers.get(target).push(`${d.kind} ${d.metadata.name}`);
    }
    if (d.kind === "Service" && d.spec?.selector && podsOf(d.spec.selector).length === 0)
      out.push(`cross: Service ${d.metadata.name} selects no pods of a Deployment`);
    if (d.kind === "PodDisruptionBudget" && podsOf(d.spec?.selector).length === 0)
      out.push(`cross: PodDisruptionBudget ${d.metadata.name} selects no pods of a Deployment`);
    if (d.kind === "NetworkPolicy" && podsOf(d.spec?.podSelector).length === 0)
      out.push(`cross: NetworkPolicy ${d.metadata.name} selects no pods of a Deployment`);
    if (d.kind === "ServiceMonitor") {
      const svcs = docs.filter((s) => s.kind === "Service" && matches(d.spec.selector, s.metadata.labels || {}));
      if (svcs.length === 0) out.push(`cross: ServiceMonitor ${d.metadata.name} selects no Service`);
      for (const ep of d.spec.endpoints || [])
        for (const s of svcs)
          if (!(s.spec.ports || []).some((p) => p.name === ep.port))
            out.push(`cross: ServiceMonitor ${d.metadata.name} scrapes port ${ep.port}, which Service ${s.metadata.name} lacks`);
    }
  }
  for (const [target, list] of scalers)
    if (list.length > 1) out.push(`cross: Deployment ${target} has several autoscalers (${list.join(", ")}): one at most`);
  for (const d of deployments)
    if (scalers.has(d.metadata.name) && d.spec.replicas !== undefined)
      out.push(`cross: Deployment ${d.metadata.name} sets replicas although ${scalers.get(d.metadata.name)[0]} owns them`);
  return out;
}

// --- the daemons' own configuration check ------------------------------------------------------

const helpCache = new Map();
function helpOf(bin) {
  if (!helpCache.has(bin)) {
    const r = spawnSync(bin, ["--help"], { encoding: "utf8", env: { PATH: process.env.PATH } });
    helpCache.set(bin, r.stdout || "");
  }
  return helpCache.get(bin);
}

// Settings the chart passes that are being added to the daemons by others: when a daemon does
// not know one yet, it is left out of its check, and said so.
const PENDING = [
  { flag: "--mode", env: "GOODWILL_MODE" },
  { flag: "--redis-password-file", env: "GOODWILL_REDIS_PASSWORD_FILE" },
];

function daemonProblems(doc, notes) {
  const out = [];
  if (doc.kind !== "Deployment" || !binaries) return out;
  for (const c of podSpecOf(doc)?.containers || []) {
    const args = c.args || [];
    if (!args[0]?.startsWith("goodwill-")) continue;
    const bin = path.join(binaries, args[0]);
    if (!fs.existsSync(bin)) {
      out.push(`daemon: ${bin} not found (make build)`);
      continue;
    }
    const help = helpOf(bin);
    const vars = {};
    for (const e of c.env || []) vars[e.name] = "value" in e ? String(e.value) : `placeholder-${e.name.toLowerCase()}`;
    const expand = (s) => String(s).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, n) => (n in vars ? vars[n] : m));
    const env = { PATH: process.env.PATH };
    for (const [k, v] of Object.entries(vars)) if (k.startsWith("GOODWILL_")) env[k] = expand(v);
    let flags = args.slice(1).map(expand);
    for (const p of PENDING) {
      if (help.includes(p.flag)) continue;
      const before = flags.length + Object.keys(env).length;
      flags = flags.filter((f) => f !== p.flag && !f.startsWith(`${p.flag}=`));
      delete env[p.env];
      if (flags.length + Object.keys(env).length !== before)
        notes.add(`${args[0]} does not know ${p.flag} / ${p.env} yet (being added): checked without it`);
    }
    // --help last: every flag before it and every variable is parsed and validated first.
    const r = spawnSync(bin, [...flags, "--help"], { encoding: "utf8", env });
    if (r.status !== 0)
      out.push(`daemon: container ${c.name}: ${args[0]} refuses its configuration: ${(r.stderr || "").trim()}`);
  }
  return out;
}

// --- driver -----------------------------------------------------------------------------------

async function checkFile(file, notes) {
  const text = fs.readFileSync(file, "utf8");
  const docs = [];
  const problems = [];
  for (const d of YAML.parseAllDocuments(text)) {
    if (d.errors.length) {
      problems.push(`yaml: ${d.errors[0].message}`);
      continue;
    }
    const doc = d.toJS();
    if (doc === null || doc === undefined) continue;
    docs.push(doc);
  }
  for (const doc of docs) {
    const what = `${doc.kind || "?"} ${doc.metadata?.name || "?"}`;
    if (!doc.apiVersion || !doc.kind || !doc.metadata?.name) {
      problems.push(`${what}: apiVersion, kind and metadata.name are required`);
      continue;
    }
    for (const p of await schemaProblems(doc)) problems.push(`${what}: ${p}`);
    for (const p of policyProblems(doc)) problems.push(`${what}: ${p}`);
    for (const p of daemonProblems(doc, notes)) problems.push(`${what}: ${p}`);
  }
  for (const p of crossProblems(docs)) problems.push(p);
  return { docs, problems };
}

const notes = new Set();
let failed = false;
if (selfTest) {
  const fixtures = fs.readdirSync(selfTest).filter((f) => f.endsWith(".yaml")).sort();
  if (fixtures.length === 0) {
    console.error(`self-test: no fixtures in ${selfTest}`);
    process.exit(1);
  }
  for (const f of fixtures) {
    const file = path.join(selfTest, f);
    const expects = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.startsWith("# expect: ")).map((l) => l.slice(10).trim());
    const { problems } = await checkFile(file, notes);
    const missing = expects.filter((e) => !problems.some((p) => p.includes(e)));
    if (expects.length === 0 || problems.length === 0 || missing.length > 0) {
      failed = true;
      console.error(`self-test ${f}: expected problems not reported:\n  ${missing.join("\n  ") || "(no # expect lines, or nothing found)"}`);
      console.error(`  reported:\n    ${problems.join("\n    ")}`);
    } else {
      console.error(`self-test ${f}: ${expects.length} expected problems reported (${problems.length} in all)`);
    }
  }
} else {
  for (const file of files) {
    const { docs, problems } = await checkFile(file, notes);
    if (problems.length) {
      failed = true;
      console.error(`${file}:\n  ${problems.join("\n  ")}`);
    } else {
      const kinds = {};
      for (const d of docs) kinds[d.kind] = (kinds[d.kind] || 0) + 1;
      console.error(`${path.basename(file)}: ${docs.length} objects valid (${Object.entries(kinds).map(([k, n]) => `${n} ${k}`).join(", ")})`);
    }
  }
}
for (const n of notes) console.error(`note: ${n}`);
process.exit(failed ? 1 : 0);

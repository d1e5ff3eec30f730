// Validates rendered Kubernetes manifests against the API schemas of kubernetes-models (and
// its KEDA, prometheus-operator and cert-manager models), strictly: a field the schema does
// not know fails, as `kubectl apply --validate=strict` would. Optionally checks merged chart
// values against values.schema.json (JSON Schema, with ajv).
//
//   node validate.mjs MANIFESTS.yaml [--values VALUES.json --schema values.schema.json]
//
// kubernetes-models ships compiled validators that allow unknown fields. To find those, each
// object is validated through a proxy that records which keys the validator read at every
// level: a key it never read, in an object whose keys it did not enumerate (a map such as
// labels enumerates), is a field the schema does not have.
import fs from "node:fs";
import yaml from "js-yaml";
import Ajv from "ajv";

const MODELS = {
  "v1": "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "policy/v1": "kubernetes-models/policy/v1",
  "autoscaling/v2": "kubernetes-models/autoscaling/v2",
  "networking.k8s.io/v1": "kubernetes-models/networking.k8s.io/v1",
  "keda.sh/v1alpha1": "@kubernetes-models/keda/keda.sh/v1alpha1",
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
  "cert-manager.io/v1": "@kubernetes-models/cert-manager/cert-manager.io/v1",
};

// track wraps value so that reads are recorded in `seen` (path -> {keys, enumerated}).
function track(value, path, seen) {
  if (value === null || typeof value !== "object") return value;
  const entry = { keys: new Set(), enumerated: false, value };
  seen.set(path, entry);
  return new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key === "string") entry.keys.add(key);
      const v = Reflect.get(target, key, receiver);
      if (typeof key !== "string" || v === null || typeof v !== "object") return v;
      const child = Array.isArray(target) ? `${path}[${key}]` : `${path}.${key}`;
      return track(v, child, seen);
    },
    has(target, key) {
      if (typeof key === "string") entry.keys.add(key);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      entry.enumerated = true;
      return Reflect.ownKeys(target);
    },
    getOwnPropertyDescriptor(target, key) {
      entry.enumerated = true;
      return Reflect.getOwnPropertyDescriptor(target, key);
    },
  });
}

function unknownFields(seen) {
  const unknown = [];
  for (const [path, entry] of seen) {
    if (Array.isArray(entry.value) || entry.enumerated) continue;
    for (const key of Object.keys(entry.value)) {
      if (!entry.keys.has(key)) unknown.push(`${path}.${key}`);
    }
  }
  return unknown;
}

async function validateObject(obj) {
  const module = MODELS[obj.apiVersion];
  if (!module) return [`no schema for apiVersion ${obj.apiVersion}`];
  const models = await import(module);
  const Model = models[obj.kind];
  if (!Model) return [`no schema for ${obj.apiVersion} ${obj.kind}`];
  const seen = new Map();
  // The model's validator (set on its prototype), run on the tracked object.
  const errors = [];
  try {
    Model.prototype.validate.call(track(obj, "", seen));
  } catch (e) {
    errors.push(e.message.split("\n").slice(0, 8).join("\n"));
  }
  for (const field of unknownFields(seen)) errors.push(`unknown field ${field}`);
  return errors;
}

async function main() {
  const args = process.argv.slice(2);
  const manifests = args[0];
  const valuesAt = args.indexOf("--values");
  const schemaAt = args.indexOf("--schema");
  let failed = 0;
  if (valuesAt > 0 && schemaAt > 0) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    const check = ajv.compile(JSON.parse(fs.readFileSync(args[schemaAt + 1], "utf8")));
    const values = JSON.parse(fs.readFileSync(args[valuesAt + 1], "utf8"));
    if (!check(values)) {
      failed++;
      for (const e of check.errors)
        console.error(`values${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
    }
  }
  const docs = yaml.loadAll(fs.readFileSync(manifests, "utf8")).filter((d) => d);
  for (const obj of docs) {
    const name = `${obj.kind}/${obj.metadata && obj.metadata.name}`;
    const errors = await validateObject(obj);
    if (errors.length) {
      failed++;
      console.error(`${name}:`);
      for (const e of errors) console.error(`  ${e}`);
    }
  }
  console.log(`${manifests}: ${docs.length} objects checked, ${failed} invalid`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});

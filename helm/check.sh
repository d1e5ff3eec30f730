#!/usr/bin/env bash
# make chart-check: the Helm chart rendered and checked without helm or a cluster.
#   1. helm-render (Helm's template language: Go text/template + sprig, built from Debian's Go
#      packages) renders helm/fetchfleet for every ci/*-values.yaml, and NOTES.txt;
#   2. the merged values of each are checked against values.schema.json, and every rendered
#      object against the Kubernetes API schemas, strictly (unknown fields fail);
#   3. values that must be refused are: a misspelt key, security.mode none without the
#      NetworkPolicies, an external Redis without a password Secret.
# Prints each file's object count. Usage: helm/check.sh [OUT_DIR] (rendered files kept there).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
chart=$here/fetchfleet
out=${1:-$(mktemp -d /tmp/ff-chart.XXXXXX)}
mkdir -p "$out"
render=$out/helm-render
"$here/render/build.sh" "$render"
if [ ! -d "$here/validate/node_modules" ]; then
  (cd "$here/validate" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
validate() { node "$here/validate/validate.mjs" "$@"; }
# The APIs a cluster with the Prometheus Operator, KEDA and cert-manager serves.
apis=monitoring.coreos.com/v1,monitoring.coreos.com/v1/ServiceMonitor,keda.sh/v1alpha1,cert-manager.io/v1

for values in "$chart"/ci/*-values.yaml; do
  name=$(basename "$values" -values.yaml)
  for cluster in plain full; do
    extra=""
    [ "$cluster" = full ] && extra="-api-versions $apis"
    # shellcheck disable=SC2086
    "$render" -f "$values" -namespace fetchfleet -release ff $extra "$chart" > "$out/$name-$cluster.yaml"
    "$render" -values-json -f "$values" "$chart" > "$out/$name.values.json"
    validate "$out/$name-$cluster.yaml" --values "$out/$name.values.json" \
      --schema "$chart/values.schema.json"
  done
  "$render" -notes -f "$values" -namespace fetchfleet -release ff "$chart" > "$out/$name.notes.txt"
done

# Values the chart must refuse, each with its reason.
refuse() {  # WHAT EXPECTED_MESSAGE VALUES_YAML
  local file=$out/refused.yaml
  printf '%s\n' "$3" > "$file"
  if "$render" -f "$file" -namespace fetchfleet -release ff "$chart" > "$out/refused.yaml.out" \
       2> "$out/refused.out" &&
     "$render" -values-json -f "$file" "$chart" > "$out/refused.json" &&
     validate "$out/refused.yaml.out" --values "$out/refused.json" \
       --schema "$chart/values.schema.json" > "$out/refused.out" 2>&1; then
    echo "error: the chart accepted $1" >&2
    exit 1
  fi
  if ! grep -q -- "$2" "$out/refused.out"; then
    echo "error: $1 was refused without saying \"$2\":" >&2
    cat "$out/refused.out" >&2
    exit 1
  fi
  echo "refused: $1"
}
refuse "a misspelt value" "additionalProperty\":\"maxInflght" $'worker:\n  maxInflght: 3'
refuse "security off without NetworkPolicies" "anyone who reaches the coordinator" \
  $'security:\n  mode: none\nnetworkPolicy:\n  enabled: false'
refuse "an external Redis without a password" "no Redis without a password" \
  $'redis:\n  enabled: false\nexternalRedis:\n  address: r:6379'
refuse "a bad duration" "must match pattern" $'worker:\n  drainTimeout: 30 seconds'
refuse "one issuer for the coordinator and the workers" "must be another issuer" \
  $'security:\n  mode: certManager\n  certManager:\n    issuerRef:\n      name: ca\n    workerIssuerRef:\n      name: ca'
refuse "an unknown field in a free-form value (affinity), by the Kubernetes schema" "unknown field .spec.template.spec.affinity" \
  $'worker:\n  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        - topologyKey: kubernetes.io/hostname\n          labelSelector: {matchLabels: {a: b}}\n          namespaceSelector: {matchExpressions: [{key: k, operator: In, values: [v]}]}\n          bogusField: 1'
echo "chart-check: passed ($out)"

#!/usr/bin/env bash
# Regenerates the JSON Schemas in this folder from Grafana's own published types, offline from
# the npm registry (no Grafana server, no network beyond npm):
#   @grafana/schema@11.6.16 (Apache-2.0, Grafana Labs): the TypeScript types that Grafana
#   generates from its CUE kinds: the dashboard kind (raw/dashboard/x/dashboard_types.gen.d.ts)
#   and each panel plugin's options and field config (raw/composable/<panel>/panelcfg/x/).
#   xychart is the 11.x XY chart (series mapping auto/manual; raw/composable/xychart, not the
#   pre-11 "xychart2" preview).
#   ts-json-schema-generator@2.4.0 turns them into JSON Schema draft-07 (closed objects, as the
#   CUE definitions are closed).
# The schemas are checked in so that the tests need no node; run this to refresh them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund @grafana/schema@11.6.16 ts-json-schema-generator@2.4.0
echo '{"compilerOptions": {"strict": true}}' >tsconfig.json
gen() {  # gen FILE TYPE OUT
  node_modules/.bin/ts-json-schema-generator --path "$1" --type "$2" --tsconfig tsconfig.json \
    --no-top-ref --out "$here/$3"
}
raw=node_modules/@grafana/schema/dist/esm/raw
gen "$raw/dashboard/x/dashboard_types.gen.d.ts" Dashboard dashboard.schema.json
for panel in timeseries table stat piechart xychart; do
  file=$(ls "$raw/composable/$panel/panelcfg/x/"*_types.gen.d.ts)
  gen "$file" Options "$panel.options.schema.json"
  if grep -q "interface FieldConfig" "$file"; then
    gen "$file" FieldConfig "$panel.fieldconfig.schema.json"
  fi
done
echo "regenerated $(ls "$here"/*.schema.json | wc -l) schemas in $here" >&2

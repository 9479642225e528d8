#!/usr/bin/env bash
# Runs the env build in Wassette (Microsoft's MCP host for components) end to end: load the
# component, grant it the network host and environment keys with Wassette's own commands, serve
# it over MCP stdio, and check that its tools carry our WIT docs and that a call sends the exact
# request to a local server. Not part of CI: Wassette is not in any package registry CI
# reaches. Usage: WASSETTE=/path/to/wassette bash tests/wassette/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
wassette=${WASSETTE:?set WASSETTE to a wassette binary (e.g. built from github.com/microsoft/wassette v0.3.4)}
wasm="$root/target/wasm32-wasip2/release/klaviyo_connector_env.wasm"
[ -f "$wasm" ] || { echo "wassette: build the components first ($wasm missing)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
plugins="$work/components"
id=klaviyo_connector_env
# Wassette keeps its state under XDG dirs: keep this run's apart.
export HOME="$work" XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config"
"$wassette" --version
"$wassette" component load "file://$wasm" --plugin-dir "$plugins" > "$work/load.json"
"$wassette" permission grant network "$id" 127.0.0.1 --plugin-dir "$plugins"
for key in KLAVIYO_API_KEY KLAVIYO_COMPANY_ID KLAVIYO_BASE_URL; do
  "$wassette" permission grant environment-variable "$id" "$key" --plugin-dir "$plugins"
done
"$wassette" policy get "$id" --plugin-dir "$plugins"
node "$root/tests/wassette/check.mjs" "$wassette" "$plugins"

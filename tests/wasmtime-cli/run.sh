#!/usr/bin/env bash
# Runs the env build in the `wasmtime` CLI (another wasmtime-based host, with its own wasi:http)
# through `--invoke`: a typed call sends the exact request to a local server, and bad input is
# a typed error. Not in CI (the CLI is a second wasmtime build: `cargo install wasmtime-cli
# --version 48.0.8`). Usage: WASMTIME=/path/to/wasmtime bash tests/wasmtime-cli/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
wasmtime=${WASMTIME:-wasmtime}
wasm="$root/target/wasm32-wasip2/release/klaviyo_connector_env.wasm"
[ -f "$wasm" ] || { echo "wasmtime-cli: build the components first ($wasm missing)" >&2; exit 1; }
out=$(mktemp)
node "$root/tests/jco/server.mjs" > "$out" &
server=$!
trap 'kill $server; rm -f "$out"' EXIT
while [ ! -s "$out" ]; do sleep 0.1; done
port=$(cat "$out")
invoke() {
  "$wasmtime" run -S http --env KLAVIYO_API_KEY=pk_wasmtime_cli_test \
    --env "KLAVIYO_BASE_URL=http://127.0.0.1:$port" --invoke "$1" "$wasm"
}
"$wasmtime" --version
failed=0
expect() { # name, output, fixed string expected in it
  if grep -qF -- "$3" <<< "$2"; then echo "ok - $1"; else echo "not ok - $1: $2"; failed=1; fi
}
got=$(invoke 'get-list({id: "$custom:::x y", fields-list: some(["name"])})')
expect 'typed call: escaped id and sparse fieldset' "$got" '\"url\":\"/api/lists/%24custom%3A%3A%3Ax%20y?fields%5Blist%5D=name\"'
expect 'typed call: the key from the environment' "$got" '\"authorization\":\"Klaviyo-API-Key pk_wasmtime_cli_test\"'
expect 'typed call: the revision' "$got" '\"revision\":\"2026-07-15\"'
got=$(invoke 'get-list({id: ""})')
expect 'bad input is a typed error' "$got" 'err(invalid-input({field: "id", message: "must not be empty"}))'
exit $failed

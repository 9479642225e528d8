#!/usr/bin/env bash
# Runs the env build of the component in Node via jco (a component host we did not write).
# Installs @bytecodealliance/jco and preview2-shim (pinned) into .jco/ on first use.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="$root/.jco"
wasm="$root/target/wasm32-wasip2/release/klaviyo_connector_env.wasm"
[ -f "$wasm" ] || { echo "jco: build the components first ($wasm missing)" >&2; exit 1; }
if [ ! -x "$dir/node_modules/.bin/jco" ]; then
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
    @bytecodealliance/jco@1.35.0 @bytecodealliance/preview2-shim@0.26.1
fi
rm -rf "$dir/out"
"$dir/node_modules/.bin/jco" transpile "$wasm" -o "$dir/out" --no-typescript --quiet
# The transpiled module imports the shim by package name: resolve it from .jco/node_modules.
ln -sfn "$dir/node_modules" "$dir/out/node_modules"
echo '{"type": "module"}' > "$dir/out/package.json"
# jco's own decoder prints the component's WIT, with the docs the binary carries.
"$dir/node_modules/.bin/jco" wit "$wasm" > "$dir/out/component.wit"
node "$root/tests/jco/test.mjs" "$dir/out"

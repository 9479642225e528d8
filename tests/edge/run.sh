#!/usr/bin/env bash
# Runs the HTTP (edge) build under `jco serve` (Node: a wasi:http host we did not write) and
# drives it with the official MCP Python SDK's Streamable HTTP client, in its default mode
# (server/discover, 2026-07-28 stateless requests) and in legacy mode (initialize): the tool
# list, a read (the exact request a local upstream receives: tests/edge/upstream.py, its own
# process), a write the default policy denies (nothing sent), a wrong token (401).
# Installs jco (pinned, into .jco/, shared with tests/jco) and the SDK (pip, pinned) on first
# use; needs Node 20 + npm and python3 (3.10+). The component sees only the environment given
# below (`env -i`): jco serve hands the whole process environment to it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
wasm="$target/wasm32-wasip2/release/klaviyo_connector_http.wasm"
[ -f "$wasm" ] || { echo "edge: build the components first ($wasm missing)" >&2; exit 1; }
dir="$root/.jco"
if [ ! -x "$dir/node_modules/.bin/jco" ]; then
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
    @bytecodealliance/jco@1.35.0 @bytecodealliance/preview2-shim@0.26.1
fi
# The SDK: python3's own if it has mcp 2.3.0; else a venv in .jco/ (pip refuses to install into
# a distribution's python, PEP 668); else, without the venv module, python3 past that marker.
py=python3
want='import importlib.metadata as m, sys; sys.exit(m.version("mcp") != "2.3.0")'
pip_install() { "$@" -m pip install --quiet --disable-pip-version-check mcp==2.3.0; }
if ! "$py" -c "$want" 2>/dev/null; then
  venv="$dir/mcp-venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" 2>/dev/null || rm -rf "$venv"
  if [ -x "$venv/bin/python" ]; then
    py="$venv/bin/python"
    "$py" -c "$want" 2>/dev/null || pip_install "$py"
  else
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages mcp==2.3.0 \
      || pip_install python3
  fi
fi
revision=$(sed -n 's/^pub const REVISION: &str = "\(.*\)";$/\1/p' "$root/crates/catalog/src/generated/operations.rs")
[ -n "$revision" ] || { echo "edge: no REVISION in the generated catalog" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  # Each was started as the leader of its own process group (jco serve runs its server in a
  # child node process): stop the groups.
  for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

setsid python3 "$root/tests/edge/upstream.py" "$work/requests.jsonl" > "$work/upstream.port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/upstream.port" ] && break; sleep 0.1; done
upstream=$(head -n1 "$work/upstream.port")
[ -n "$upstream" ] || { echo "edge: the upstream did not start" >&2; exit 1; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key="pk_edge_test_$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
token=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
setsid env -i PATH="$PATH" \
  KLAVIYO_API_KEY="$key" \
  KLAVIYO_BASE_URL="http://127.0.0.1:$upstream" \
  KLAVIYO_MCP_TOKENS="ci:$token" \
  "$dir/node_modules/.bin/jco" serve --host 127.0.0.1 --port "$port" --jco-dir "$work/jco" "$wasm" \
  > "$work/jco.log" 2>&1 &
pids+=($!)
ready=""
for _ in $(seq 300); do
  if python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/healthz', timeout=1)" 2>/dev/null; then
    ready=1; break
  fi
  sleep 0.2
done
[ -n "$ready" ] || { echo "edge: jco serve did not answer /healthz" >&2; cat "$work/jco.log" >&2; exit 1; }
echo "edge: jco serve on 127.0.0.1:$port, upstream on 127.0.0.1:$upstream"

if ! "$py" "$root/tests/edge/client.py" --url "http://127.0.0.1:$port/mcp" --token "$token" \
  --key "$key" --revision "$revision" --log "$work/requests.jsonl"; then
  echo "--- jco serve log ---" >&2; cat "$work/jco.log" >&2
  exit 1
fi
echo "edge: all checks passed"

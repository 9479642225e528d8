#!/usr/bin/env bash
# The MCP server driven by the official MCP Python SDK (stdio and Streamable HTTP, default and
# legacy modes). Needs the harness binary (cargo builds it with the tests) and Python 3.10+.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m pip install --quiet --disable-pip-version-check "mcp==2.3.0" 2>&1 | grep -v "Running pip as the 'root' user" || true
bin="${HARNESS:-target/debug/klaviyo-harness}"
if [ ! -x "$bin" ]; then
  echo "no harness binary at $bin: run cargo build -p klaviyo-harness first (or set HARNESS)" >&2
  exit 1
fi
exec python3 tests/mcp-python/test_mcp.py "$bin"

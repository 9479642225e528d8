#!/usr/bin/env bash
# Conformance suite: installs Prism 5.14.2 (npm, into .prism/), then runs every tool of the
# component through the harness against it. Needs ../shared/klaviyo-openapi (the spec and the
# Prism fixes); without it, skips with a notice unless KLAVIYO_REQUIRE_SPEC is set (as in CI).
# The components must be built first (cargo build --target wasm32-wasip2 --release).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
shared="$root/../shared/klaviyo-openapi"
if [ ! -f "$shared/stable.json" ]; then
  if [ -n "${KLAVIYO_REQUIRE_SPEC:-}" ]; then
    echo "conformance: $shared/stable.json is missing" >&2
    exit 1
  fi
  echo "conformance: skipped ($shared/stable.json not found)"
  exit 0
fi
prism="$root/.prism"
if [ ! -x "$prism/node_modules/.bin/prism" ]; then
  npm install --prefix "$prism" --no-audit --no-fund --loglevel=error @stoplight/prism-cli@5.14.2
fi
port=${CONFORMANCE_PORT:-4010}
cd "$root"
cargo run -q -p conformance -- --prism-dir "$prism" --shared "$shared" --port "$port" \
  --report "$root/target/conformance-report.md"

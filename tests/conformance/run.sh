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
# Built with the whole workspace's test feature set, as `cargo test --workspace` builds it, so
# nothing it shares with the tests (wasmtime, the harness) is compiled a second time; a plain
# `cargo run -p conformance` resolves features without the tests' dev-dependencies and rebuilt
# the harness and wasmtime (4 minutes and 1.5 GB in CI).
cargo build -q --workspace --tests --bins
"${CARGO_TARGET_DIR:-$root/target}/debug/conformance" --prism-dir "$prism" --shared "$shared" --port "$port" \
  --report "$root/target/conformance-report.md"

#!/usr/bin/env bash
# The sandbox account checked against Klaviyo's spec by an independent validator: Prism in
# proxy mode (with the shared fixes) in front of `klaviyo-harness sandbox serve`, and a sweep of
# every GET operation (ids taken from the account's own lists) plus the writes the sandbox
# simulates; any response Prism flags (`sl-violations`) fails the run. Then a multi-step agent
# task through the CLI (`--sandbox`). Needs ../shared/klaviyo-openapi; without it, skips
# unless KLAVIYO_REQUIRE_SPEC is set (as in CI). Build first: cargo build --workspace.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
shared="$root/../shared/klaviyo-openapi"
if [ ! -f "$shared/stable.json" ]; then
  if [ -n "${KLAVIYO_REQUIRE_SPEC:-}" ]; then echo "sandbox: $shared/stable.json is missing" >&2; exit 1; fi
  echo "sandbox: skipped ($shared/stable.json not found)"; exit 0
fi
prism="$root/.prism"
if [ ! -x "$prism/node_modules/.bin/prism" ]; then
  npm install --prefix "$prism" --no-audit --no-fund --loglevel=error @stoplight/prism-cli@5.14.2
fi
bash "$shared/prism/patch_prism.sh" "$prism/node_modules" >/dev/null
work="$root/target/sandbox-check"
rm -rf "$work" && mkdir -p "$work/state"
python3 "$shared/prism/fix_spec.py" "$shared/stable.json" "$work/stable.prism.json" >/dev/null
bin="${CARGO_TARGET_DIR:-$root/target}/debug/klaviyo-harness"
[ -x "$bin" ] || cargo build -q -p klaviyo-harness
sport=${SANDBOX_PORT:-4791}
pport=${SANDBOX_PROXY_PORT:-4792}
KLAVIYO_STATE_DIR="$work/state" "$bin" sandbox serve --port "$sport" 2>"$work/serve.log" &
spid=$!
"$prism/node_modules/.bin/prism" proxy "$work/stable.prism.json" "http://127.0.0.1:$sport" -p "$pport" -h 127.0.0.1 >"$work/prism.log" 2>&1 &
ppid=$!
trap 'kill $spid $ppid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -s -o /dev/null "http://127.0.0.1:$pport/api/accounts" -H 'Authorization: Klaviyo-API-Key x' -H 'revision: 2026-07-15' && break
  sleep 0.5
done
python3 "$root/tests/sandbox/sweep.py" "$shared/stable.json" "http://127.0.0.1:$pport" "$work/report.md"
# A multi-step task through the CLI, state kept between processes.
export KLAVIYO_STATE_DIR="$work/cli-state" KLAVIYO_SANDBOX=1 KLAVIYO_AUDIT_LOG="$work/audit.jsonl"
policy="$work/policy.toml"
printf '[[rules]]\naccess = "write"\ndecision = "allow"\n' > "$policy"
"$bin" sandbox reset >/dev/null
id=$("$bin" --json --policy "$policy" call create_list 'body={"data":{"type":"list","attributes":{"name":"Rehearsal VIPs"}}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["data"]["id"])')
"$bin" --json call get_lists "filter=equals(name,'Rehearsal VIPs')" | python3 -c "import json,sys; d=json.load(sys.stdin); assert [x['id'] for x in d['result']['data']]==['$id'], d"
set +e
"$bin" call delete_list "id=$id" >/dev/null 2>"$work/denied.txt"; code=$?
set -e
[ "$code" = 3 ] || { echo "sandbox: delete_list under a write-only policy exited $code, not 3 (denied)" >&2; exit 1; }
"$bin" --json call get_list "id=$id" >/dev/null
# The sandbox's audit records are reported with --sandbox and left out of a real account's report.
"$bin" --json report | python3 -c "import json,sys; r=json.load(sys.stdin)['result']; assert r['connection']=='sandbox:1' and r['records']>0 and r['sandbox_records_left_out']==0, r"
KLAVIYO_SANDBOX=0 "$bin" --json report | python3 -c "import json,sys; r=json.load(sys.stdin)['result']; assert r['totals']['calls']==0 and r['sandbox_records_left_out']>0, r"
echo "sandbox: CLI task ok (created, found by filter, delete denied by policy and the list still there; audited as sandbox:1, left out of a real account's report)"

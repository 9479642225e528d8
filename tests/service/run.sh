#!/usr/bin/env bash
# Checks the service files in examples/ without starting a service (no systemd as PID 1 needed,
# as on CI and build machines):
#
#   1. `systemd-analyze verify` on examples/klaviyo-harness.service: no warning or error about
#      it (verify exits 0 on "Unknown key …, ignoring", so its output is checked too). A broken
#      copy is verified as well, to prove the check catches a typo.
#   2. `systemd-analyze security --offline=yes`: prints the exposure score and fails above
#      MAX_EXPOSURE (default 1.2; measured 1.1 with systemd 252 on Debian 12). Other systemd
#      versions weigh settings differently: set MAX_EXPOSURE there after reviewing the table.
#   3. MemoryDenyWriteExecute stays off (wasmtime must make its compiled code executable).
#   4. With a built harness (KLAVIYO_HARNESS, else target/debug/klaviyo-harness when present):
#      the unit's ExecStart flags and every key of examples/klaviyo-harness.toml (commented
#      ones included) are accepted by the binary, so the examples cannot drift from the CLI.
#
# `verify` needs ExecStart= to name an executable file, so the unit is copied to a temporary
# directory with its binary path pointed at a stub (the name stays klaviyo-harness.service).
# Runs as root or not; installs systemd with apt-get only when systemd-analyze is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

UNIT=examples/klaviyo-harness.service
CONFIG=examples/klaviyo-harness.toml
MAX_EXPOSURE=${MAX_EXPOSURE:-1.2}
export LC_ALL=C SYSTEMD_COLORS=0 SYSTEMD_PAGER=

fail() { echo "FAIL: $*" >&2; exit 1; }

if ! command -v systemd-analyze >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "systemd-analyze is missing: installing the systemd package"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
  fi
  command -v systemd-analyze >/dev/null 2>&1 || fail "systemd-analyze not found (Debian: apt-get install systemd)"
fi
version=$(systemd-analyze --version | awk 'NR == 1 { print $2 }')
echo "systemd-analyze: $(command -v systemd-analyze), systemd $version"
# `security --offline` appeared in systemd 250.
[ "${version%%[^0-9]*}" -ge 250 ] || fail "systemd $version is too old for \`systemd-analyze security --offline\` (needs 250)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/unit" "$tmp/bad"
printf '#!/bin/sh\nexit 0\n' >"$tmp/klaviyo-harness" && chmod 755 "$tmp/klaviyo-harness"
exec_path=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$UNIT")
[ -n "$exec_path" ] || fail "$UNIT has no ExecStart="
sed "s|^ExecStart=$exec_path|ExecStart=$tmp/klaviyo-harness|" "$UNIT" >"$tmp/unit/klaviyo-harness.service"

# Lines of `verify` output about our unit (a system unit's own warnings are shown, not fatal).
verify() {
  local out rc=0
  out=$(systemd-analyze verify "$1" 2>&1) || rc=$?
  [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/  verify: /' >&2
  if [ "$rc" != 0 ] || printf '%s\n' "$out" | grep -q 'klaviyo-harness'; then
    return 1
  fi
}

echo "== systemd-analyze verify $UNIT (ExecStart pointed at a stub)"
verify "$tmp/unit/klaviyo-harness.service" || fail "systemd-analyze verify reports problems with $UNIT"
echo "verify: no warnings, no errors"

echo "== negative control: a copy with a misspelt key must be caught"
sed 's/^ProtectClock=yes/ProtectClok=yes/' "$tmp/unit/klaviyo-harness.service" >"$tmp/bad/klaviyo-harness.service"
grep -q '^ProtectClok=yes' "$tmp/bad/klaviyo-harness.service" || fail "negative control: ProtectClock=yes not found in $UNIT"
if verify "$tmp/bad/klaviyo-harness.service" 2>/dev/null; then
  fail "negative control: verify did not catch an unknown key"
fi
echo "caught"

echo "== systemd-analyze security --offline=yes $UNIT"
sec=$(systemd-analyze security --offline=yes "$tmp/unit/klaviyo-harness.service" 2>&1) || {
  printf '%s\n' "$sec" >&2
  fail "systemd-analyze security failed"
}
# The settings that still expose something, each with its share of the score.
printf '%s\n' "$sec" | grep -E '[[:space:]][0-9]+\.[0-9]+[[:space:]]*$' | grep -v 'Overall' || true
score=$(printf '%s\n' "$sec" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { printf '%s\n' "$sec" >&2; fail "no exposure score in the output"; }
printf '%s\n' "$sec" | grep 'Overall exposure level'
echo "exposure score: $score (threshold: $MAX_EXPOSURE; 0 = fully sandboxed, 10 = unprotected)"
awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }' ||
  fail "exposure score $score is above $MAX_EXPOSURE: a hardening setting was lost or weakened"

echo "== MemoryDenyWriteExecute"
if grep -Eq '^MemoryDenyWriteExecute=(yes|true|on|1)' "$UNIT"; then
  fail "MemoryDenyWriteExecute=yes breaks wasmtime: its mprotect(PROT_EXEC) of compiled code is refused (see the comment in $UNIT)"
fi
echo "off, as wasmtime needs"

echo "== the examples against the built binary"
bin=${KLAVIYO_HARNESS:-target/debug/klaviyo-harness}
if [ ! -x "$bin" ]; then
  echo "skipped: no built harness at $bin (set KLAVIYO_HARNESS, or build it first)"
else
  # ExecStart's arguments (continuation lines joined), specifiers replaced by temporary paths;
  # `--help` after them makes clap check every flag and exit without running anything.
  args=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$UNIT" | sed 's/\\$//' | tr '\n' ' ' | tr -s ' ' | sed 's/^ExecStart=[^ ]* //; s/ $//')
  args=${args//%d/$tmp/cred}
  args=${args//%S/$tmp/state}
  args=${args//%C/$tmp/cache}
  # shellcheck disable=SC2086 # word splitting of the unit's arguments is intended
  "$bin" $args --help >/dev/null 2>"$tmp/err" || {
    cat "$tmp/err" >&2
    fail "$bin does not accept the unit's ExecStart arguments: $args"
  }
  echo "ExecStart arguments accepted: $args"
  # Every key of the example config, the commented ones too, must be known (unknown keys are
  # refused). `scopes` reads the config and the policy and needs neither key nor network.
  mkdir -p "$tmp/config"
  cp examples/policy.toml "$tmp/config/policy.toml"
  sed -E 's/^# ([a-z_]+ = )/\1/' "$CONFIG" >"$tmp/config/all-keys.toml"
  for c in "$CONFIG" "$tmp/config/all-keys.toml"; do
    env -u KLAVIYO_API_KEY -u KLAVIYO_MCP_TOKENS "$bin" --config "$c" scopes >/dev/null 2>"$tmp/err" || {
      cat "$tmp/err" >&2
      fail "$bin refuses the config file $c (from $CONFIG)"
    }
  done
  echo "config keys accepted: $(grep -Eo '^(# )?[a-z_]+ = ' "$CONFIG" | sed -E 's/^# //; s/ = //' | tr '\n' ' ')"
fi

echo "PASS: service unit verified; exposure $score"

#!/usr/bin/env bash
# The HTML audit report in a real headless browser (Debian's chromium, driven by Playwright for
# Python with executable_path): the page loads with no console errors, both charts render with
# a non-zero size and bars in them, and a screenshot is kept in target/report/report.png.
# The page is the one `cli::report_reads_back_what_the_calls_did` writes (cargo test first).
set -euo pipefail
cd "$(dirname "$0")/../.."
page="${CARGO_TARGET_DIR:-target}/tmp/report-sample.html"
if [ ! -f "$page" ]; then
  echo "no report page at $page: run cargo test --workspace first" >&2
  exit 1
fi
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
  else
    echo "chromium is not installed (apt-get install chromium)" >&2
    exit 1
  fi
fi
python3 -m pip install --quiet --disable-pip-version-check "playwright==1.*" 2>&1 | grep -v "Running pip as the 'root' user" || true
mkdir -p "${CARGO_TARGET_DIR:-target}/report"
exec python3 tests/report/check.py "$page" "${CARGO_TARGET_DIR:-target}/report/report.png"

"""Loads the audit report page in headless Chromium and checks what a person would see."""
import pathlib
import sys

from playwright.sync_api import sync_playwright

page_path, shot = pathlib.Path(sys.argv[1]).resolve(), sys.argv[2]
failures = []
with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    )
    page = browser.new_page(viewport={"width": 1024, "height": 900})
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    requests = []
    page.on("request", lambda r: requests.append(r.url) if not r.url.startswith("file:") else None)
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    if problems:
        failures.append("; ".join(problems))
    if requests:
        failures.append(f"the page fetched {requests}: it must be self-contained")
    for chart in ("#calls-per-day", "#latency-per-action"):
        box = page.locator(chart).bounding_box()
        if not box or box["width"] <= 0 or box["height"] <= 0:
            failures.append(f"{chart} has no size: {box}")
        bars = page.locator(f"{chart} rect").count()
        if bars == 0:
            failures.append(f"{chart} has no bars")
        else:
            bar = page.locator(f"{chart} rect").first.bounding_box()
            if not bar or bar["width"] <= 0 or bar["height"] <= 0:
                failures.append(f"the first bar of {chart} has no size: {bar}")
    if "Needs a look" not in page.inner_text("body"):
        failures.append("no 'Needs a look' section")
    page.screenshot(path=shot, full_page=True)
    browser.close()

if failures:
    print("report page: FAILED\n- " + "\n- ".join(failures))
    sys.exit(1)
print(f"report page: ok (no console errors, both charts drawn; screenshot {shot})")

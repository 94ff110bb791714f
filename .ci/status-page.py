#!/usr/bin/env python3
"""The status page in a real browser: Debian's headless Chromium, driven over the DevTools
protocol, at 1,280 px.

It renders two pages served by the real exporter binary:
- the demo's (`--demo`), and
- one with 10,000 Pages polled from the sizing simulator (`examples/simulated_graph_api.rs`),
  2 % of them failing (Graph's 500), 1 % disabled (a token Meta refuses) and 1 % partial (a
  name read that fails beside answering insights).

On each it checks the summary (counts by state), that rows needing attention come first, that
the state and kind filters and the search pick the right rows (as query parameters: no
JavaScript on the page), that a bad filter is a 400 naming it, that a page holds at most 250
rows and under 200 KB of HTML, and that nothing scrolls sideways (`scrollWidth` against the
window's width). It prints each page's size and load time, which are measurements, never
assertions. With `--screenshots DIR` it also writes `status-page.png` (the demo) and
`status-page-states.png` (10,000 targets) there: the same script keeps docs/ current.

    python3 .ci/status-page.py --exporter target/debug/meta-messaging-exporter \\
        --simulator target/debug/examples/simulated_graph_api [--screenshots docs]

Needs `chromium` (Debian's package) and the `websocket-client` module (PyPI).
"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import websocket  # websocket-client

WIDTH, HEIGHT = 1280, 900
STATE_ORDER = ["failing", "disabled", "partial", "pending", "ok"]
ROWS_PER_PAGE = 250
MAX_HTML_BYTES = 200_000


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url, timeout=10):
    """(status, body) of a GET; an HTTP error status is an answer, not an exception."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_until(what, ready, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.5)
    sys.exit(f"timed out after {timeout}s waiting for {what}")


def summary_counts(html):
    """The summary's count per state, from the page's HTML."""
    return {
        state: int(count)
        for count, state in re.findall(r'class="badge (?:\w+)" href="[^"]*">(\d+) (\w+)</a>', html)
    }


def wait_for_every_target(base, expected_total, timeout):
    """Until the summary counts `expected_total` targets (if given) and none is pending."""

    def ready():
        status, html = fetch(base + "/")
        counts = summary_counts(html)
        total = sum(counts.values())
        return (
            status == 200
            and counts.get("pending", 1) == 0
            and total > 0
            and (expected_total is None or total == expected_total)
        )

    wait_until(f"every target of {base} to be polled", ready, timeout)


class Browser:
    """One headless Chromium tab, spoken to over the DevTools protocol."""

    def __init__(self, profile):
        port = free_port()
        self.process = subprocess.Popen(
            [
                "chromium",
                "--headless=new",
                "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
                "--disable-gpu",
                "--hide-scrollbars",
                f"--remote-debugging-port={port}",
                f"--user-data-dir={profile}",
                f"--window-size={WIDTH},{HEIGHT}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        targets = []

        def listed():
            nonlocal targets
            _, text = fetch(f"http://127.0.0.1:{port}/json/list")
            targets = [t for t in json.loads(text) if t.get("type") == "page"]
            return bool(targets)

        wait_until("Chromium's DevTools endpoint", listed, 30)
        self.socket = websocket.create_connection(targets[0]["webSocketDebuggerUrl"], timeout=60)
        self.next_id = 0
        self.call("Page.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH,
            height=HEIGHT,
            deviceScaleFactor=1,
            mobile=False,
        )

    def call(self, method, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    sys.exit(f"{method}: {message['error']}")
                return message.get("result", {})

    def open(self, url):
        """Navigates and waits for the load event; returns the seconds it took."""
        started = time.monotonic()
        self.next_id += 1
        self.socket.send(
            json.dumps({"id": self.next_id, "method": "Page.navigate", "params": {"url": url}})
        )
        while True:
            message = json.loads(self.socket.recv())
            if message.get("method") == "Page.loadEventFired":
                return time.monotonic() - started

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            sys.exit(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path):
        shot = self.call("Page.captureScreenshot", format="png")
        with open(path, "wb") as file:
            file.write(base64.b64decode(shot["data"]))

    def close(self):
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=10)


def rows(browser):
    """(state class, id) of every target row, in page order."""
    return browser.evaluate(
        "[...document.querySelectorAll('table.targets tbody tr[class^=row-]')]"
        ".map(r => [r.className.slice(4), r.querySelector('td.id').firstChild.textContent.trim()])"
    )


def check(condition, what):
    if not condition:
        sys.exit(f"FAILED: {what}")
    print(f"  ok: {what}")


def check_page(browser, base, label, expected_total=None, screenshot=None):
    print(f"{label}: {base}/")
    status, html = fetch(base + "/")
    check(status == 200, "the page answers 200")
    check(len(html.encode()) < MAX_HTML_BYTES, f"under {MAX_HTML_BYTES} bytes of HTML ({len(html.encode())})")
    seconds = browser.open(base + "/")
    print(f"  measured: {len(html.encode())} bytes, loaded in {seconds:.3f} s")
    counts = summary_counts(html)
    total = sum(counts.values())
    summary = browser.evaluate("document.querySelector('p.summary').innerText")
    check(summary.startswith(f"{total} target"), f"the summary comes first and counts {total}: {summary!r}")
    if expected_total is not None:
        check(total == expected_total, f"{expected_total} targets counted")
    width = browser.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    check(width[0] <= width[1], f"no sideways scrolling at {WIDTH} px (scrollWidth {width[0]}, window {width[1]})")
    shown = rows(browser)
    check(0 < len(shown) <= ROWS_PER_PAGE, f"{len(shown)} rows, at most {ROWS_PER_PAGE}")
    ranks = [STATE_ORDER.index(state) for state, _ in shown]
    check(ranks == sorted(ranks), "failing and disabled targets first, then partial, pending, ok")
    if screenshot:
        os.makedirs(os.path.dirname(screenshot) or ".", exist_ok=True)
        browser.screenshot(screenshot)
        print(f"  wrote {screenshot}")

    for state in [s for s in STATE_ORDER if counts.get(s)]:
        browser.open(f"{base}/?state={state}")
        filtered = rows(browser)
        check(
            len(filtered) == min(counts[state], ROWS_PER_PAGE)
            and all(s == state for s, _ in filtered),
            f"?state={state} shows its {counts[state]} targets only",
        )
        width = browser.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        check(width[0] <= width[1], f"?state={state} does not scroll sideways either")
    wanted_state, wanted_id = shown[-1]
    browser.open(f"{base}/?q={wanted_id}")
    found = rows(browser)
    check(
        (wanted_state, wanted_id) in [tuple(row) for row in found],
        f"the search finds {wanted_id}",
    )
    browser.open(f"{base}/?state=ok&kind=whatsapp_business_account")
    check(
        all(state == "ok" for state, _ in rows(browser)),
        "state and kind filters together",
    )
    status, body = fetch(base + "/?state=broken")
    check(status == 400 and "state=" in body, f"a bad filter is a 400 naming it: {body.strip()!r}")


def start(command, log):
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exporter", required=True)
    parser.add_argument("--simulator", required=True)
    parser.add_argument("--screenshots", help="write the screenshots into this folder")
    parser.add_argument("--targets", type=int, default=10_000)
    args = parser.parse_args()
    if not shutil.which("chromium"):
        sys.exit("chromium is not installed (Debian: apt-get install chromium)")
    work = tempfile.mkdtemp(prefix="status-page-")
    processes = []
    try:
        log = open(os.path.join(work, "processes.log"), "w")
        demo_port = free_port()
        processes.append(
            start([args.exporter, "--demo", f"--web.listen-address=127.0.0.1:{demo_port}"], log)
        )
        config = os.path.join(work, "config.yaml")
        processes.append(
            start(
                [
                    args.simulator,
                    f"--pages={args.targets}",
                    "--campaigns=0",
                    "--wabas=0",
                    "--page-metrics=flat",
                    "--interval=1h",
                    "--error-share=0.02",
                    "--invalid-token-share=0.01",
                    "--partial-share=0.01",
                    f"--config-out={config}",
                ],
                log,
            )
        )
        wait_until("the simulator's config", lambda: os.path.exists(config) and os.path.getsize(config) > 0, 120)
        time.sleep(1)  # the config file is written whole before the simulator says so
        many_port = free_port()
        processes.append(
            start(
                [args.exporter, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{many_port}"],
                log,
            )
        )
        demo = f"http://127.0.0.1:{demo_port}"
        many = f"http://127.0.0.1:{many_port}"
        wait_for_every_target(demo, None, 120)
        wait_for_every_target(many, args.targets, 600)
        browser = Browser(os.path.join(work, "profile"))
        try:
            shots = args.screenshots
            check_page(browser, demo, "the demo", screenshot=shots and os.path.join(shots, "status-page.png"))
            check_page(
                browser,
                many,
                f"{args.targets} simulated targets",
                expected_total=args.targets,
                screenshot=shots and os.path.join(shots, "status-page-states.png"),
            )
        finally:
            browser.close()
    finally:
        for process in processes:
            stop(process)
        shutil.rmtree(work, ignore_errors=True)
    print("the status page passed in Chromium")


if __name__ == "__main__":
    main()

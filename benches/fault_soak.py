#!/usr/bin/env python3
"""Fault soak: healthy Pages beside hanging, failing and throttled ones, batch calls on and off.

Usage:
  benches/fault_soak.py [--pages 200] [--tokens 4] [--minutes 10] [--interval 30s]
                        [--latency 100ms] [--batch-entry-latency 5ms]
                        [--hang-share 0.05] [--error-share 0.05] [--throttle-share 0.05]
                        [--modes on,off]

For each mode of `polling.batch` it starts `examples/simulated_graph_api.rs` (release) with
--pages Pages of ten daily metrics spread over --tokens tokens, of which the given shares stall
for an hour, answer Graph's 500, or are rate limited (code 80001), spread evenly over the
tokens; then the release exporter on that config with every other setting at its default. It
scrapes /metrics every 2 s for --minutes and reports, per mode, as one JSON object and a table:

- healthy polls: the successful polls of the healthy Pages (each new value of their
  `target_last_success_timestamp_seconds`) after the first two intervals, as a share of the
  ideal count (the window divided by the interval), median and minimum over the Pages;
- healthy Pages that lost their series in any scrape after they first had them;
- solo targets at the end (`target_solo`), and how many of them are the hanging Pages;
- batch timeouts and HTTP requests the exporter counted.

A measurement, not a test: CI does not run it (20 minutes at the defaults).
"""

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORTER = os.path.join(ROOT, "target", "release", "meta-messaging-exporter")
SIMULATOR = os.path.join(ROOT, "target", "release", "examples", "simulated_graph_api")
SCRAPE_EVERY = 2.0
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def seconds(text):
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: write a duration like 300ms, 30s or 1m")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "ms" else value * 60 if unit == "m" else value


def build():
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "--example", "simulated_graph_api",
         "--bin", "meta-messaging-exporter"],
        cwd=ROOT, check=True)


def scrape(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        return response.read().decode()
    finally:
        connection.close()


def samples(text):
    """(name, labels dict, value) of every sample line."""
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            labels = dict(LABEL.findall(match.group(2)))
            yield match.group(1), labels, float(match.group(3))


def run_mode(args, batch, workdir):
    config = os.path.join(workdir, f"soak-{batch}.yaml")
    faults_path = os.path.join(workdir, f"faults-{batch}.json")
    simulator = subprocess.Popen(
        [SIMULATOR, "--pages", str(args.pages), "--tokens", str(args.tokens),
         "--page-metrics", "flat", "--campaigns", "0", "--wabas", "0",
         "--interval", f"{int(args.interval)}s",
         "--latency", f"{int(args.latency * 1000)}ms",
         "--batch-entry-latency", f"{int(args.batch_entry_latency * 1000)}ms",
         "--hang-share", str(args.hang_share), "--error-share", str(args.error_share),
         "--throttle-share", str(args.throttle_share),
         "--config-out", config, "--faults-out", faults_path],
        stderr=subprocess.PIPE, text=True)
    try:
        simulator.stderr.readline()  # "simulated Graph API at ..." once the config is written
        with open(faults_path) as file:
            faults = json.load(file)
        with open(config, "a") as file:
            file.write(f"polling:\n  batch: {'true' if batch == 'on' else 'false'}\n")
        port = free_port()
        log = open(os.path.join(workdir, f"exporter-{batch}.log"), "w")
        exporter = subprocess.Popen(
            [EXPORTER, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
             "--log.level=warn"],
            stdout=log, stderr=log)
        try:
            return observe(args, port, faults)
        finally:
            exporter.send_signal(signal.SIGTERM)
            exporter.wait(timeout=60)
            log.close()
    finally:
        simulator.send_signal(signal.SIGINT)
        simulator.wait(timeout=30)


def observe(args, port, faults):
    faulty = {page for pages in faults.values() for page in pages}
    started = time.monotonic()
    # Polls counted from two intervals in: past the start-up spread and the first batch
    # deadlines, the steady state the goal is about.
    window_start = started + 2 * args.interval
    end = started + args.minutes * 60
    successes = {}  # healthy page -> set of last-success timestamps seen in the window
    had_series = set()
    lost_series = set()
    last = ""
    while time.monotonic() < end:
        now = time.monotonic()
        try:
            last = scrape(port)
        except OSError:
            time.sleep(SCRAPE_EVERY)
            continue
        with_series = set()
        for name, labels, value in samples(last):
            if name == "meta_page_messages_sent" and labels.get("page_id") not in faulty:
                with_series.add(labels["page_id"])
            if (name == "meta_messaging_exporter_target_last_success_timestamp_seconds"
                    and labels.get("target_id") not in faulty and now >= window_start):
                successes.setdefault(labels["target_id"], set()).add(value)
        lost_series |= had_series - with_series
        had_series |= with_series
        time.sleep(max(0.0, SCRAPE_EVERY - (time.monotonic() - now)))
    window = end - window_start
    ideal = window / args.interval
    healthy = args.pages - len(faulty)
    shares = [len(successes.get(page, ())) / ideal
              for page in (f"1{n:014}" for n in range(args.pages)) if page not in faulty]
    solo = [labels["target_id"] for name, labels, value in samples(last)
            if name == "meta_messaging_exporter_target_solo" and value == 1]
    counters = {}
    for name, labels, value in samples(last):
        if name in ("meta_messaging_exporter_api_batch_timeouts_total",):
            counters[name] = counters.get(name, 0) + value
        if name == "meta_messaging_exporter_api_http_requests_total":
            counters[f"http_requests_{labels.get('type')}"] = value
    return {
        "healthy_pages": healthy,
        "ideal_polls_per_page": round(ideal, 1),
        "healthy_poll_share_median": round(statistics.median(shares), 3) if shares else None,
        "healthy_poll_share_min": round(min(shares), 3) if shares else None,
        "healthy_pages_that_lost_series": len(lost_series),
        "healthy_pages_never_seen": healthy - len(had_series),
        "solo_targets": len(solo),
        "solo_that_hang": len(set(solo) & set(faults.get("hang", []))),
        "counters": counters,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--interval", type=seconds, default=30.0)
    parser.add_argument("--latency", type=seconds, default=0.1)
    parser.add_argument("--batch-entry-latency", type=seconds, default=0.005)
    parser.add_argument("--hang-share", type=float, default=0.05)
    parser.add_argument("--error-share", type=float, default=0.05)
    parser.add_argument("--throttle-share", type=float, default=0.05)
    parser.add_argument("--modes", default="on,off")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    if not args.no_build:
        build()
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for batch in args.modes.split(","):
            print(f"batch {batch}: {args.minutes} minutes ...", file=sys.stderr)
            results[f"batch_{batch}"] = run_mode(args, batch, workdir)
    print(json.dumps(results, indent=2))
    print(f"{'mode':<10}{'poll share (median/min)':>26}{'lost':>6}{'solo':>6}{'solo hang':>11}")
    for mode, result in results.items():
        share = f"{result['healthy_poll_share_median']}/{result['healthy_poll_share_min']}"
        print(f"{mode:<10}{share:>26}{result['healthy_pages_that_lost_series']:>6}"
              f"{result['solo_targets']:>6}{result['solo_that_hang']:>11}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Load benchmark: the release exporter polling N simulated Pages, beside a Pushgateway.

Usage:
  benches/load.py [--pages 10000] [--latency 300ms] [--batch-entry-latency 10ms]
                  [--batch on|off] [--tokens 1] [--scrapes 30] [--vs-pushgateway]

Builds (if needed) and starts `examples/simulated_graph_api.rs` with --pages Pages of ten daily
metrics each (one request per Page per poll, 10 series), Meta-like answer times, and the config
that polls them; then starts the release exporter on that config with every first poll due at
once (`startup_spread: 1s`, interval 1h, so exactly one cycle runs). It reports, as one JSON
object and a table:

- first cycle: seconds from the exporter's start until every Page has polled once, against
  the ideal of calls x latency / polling.max_concurrent_requests for single calls;
- HTTP requests and API calls of that cycle (the exporter's own counters);
- resident memory of the exporter 15 s after the cycle (and its peak);
- median time to the last byte of --scrapes plain and --scrapes gzip scrapes of /metrics,
  alternating, one fresh loopback connection each, and the body sizes.

With --vs-pushgateway it also starts Debian's `prometheus-pushgateway`, pushes it the same
series (the exporter's body without its process_* families), scrapes it the same way in the
same run, and prints the ratios. A measurement, not a test: CI does not run it.
"""

import argparse
import gzip
import http.client
import json
import os
import re
import shutil
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
# polling.max_concurrent_requests when the config does not set it.
DEFAULT_CONCURRENCY = 8
# How long after the first cycle resident memory is read.
SETTLE_SECONDS = 15


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def seconds(text):
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: write a duration like 300ms or 1s")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "ms" else value


def get(port, path, encoding=None, timeout=60):
    """One GET over a fresh connection: (status, body bytes, seconds to the last byte)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Accept-Encoding": encoding or "identity"}
    started = time.monotonic()
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    elapsed = time.monotonic() - started
    content_encoding = response.getheader("Content-Encoding")
    connection.close()
    return response.status, body, elapsed, content_encoding


def wait_until(what, ready, deadline_seconds, step=1.0):
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(step)
    raise SystemExit(f"timed out after {deadline_seconds:.0f}s waiting for {what}")


def counter_sum(text, name, labels=""):
    """The sum of a family's samples whose labels contain `labels` (a substring)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and labels in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def rss_kib(pid):
    fields = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def measure_scrapes(port, scrapes):
    """Alternating plain and gzip scrapes: medians in ms and body sizes in bytes."""
    runs = {"plain": [], "gzip": []}
    for _ in range(scrapes):
        for kind, encoding in (("plain", None), ("gzip", "gzip")):
            status, body, elapsed, content_encoding = get(port, "/metrics", encoding)
            if status != 200:
                raise SystemExit(f"scrape of :{port} answered {status}")
            if encoding and content_encoding != "gzip":
                raise SystemExit(f"scrape of :{port} ignored Accept-Encoding: gzip")
            runs[kind].append((elapsed, len(body)))
    return {
        kind: {
            "median_ms": round(statistics.median(t for t, _ in samples) * 1000, 2),
            "min_ms": round(min(t for t, _ in samples) * 1000, 2),
            "max_ms": round(max(t for t, _ in samples) * 1000, 2),
            "bytes": statistics.median(size for _, size in samples),
        }
        for kind, samples in runs.items()
    }


def without_process_families(text):
    """The exposition without process_* families: the Pushgateway exports its own."""
    return "\n".join(
        line
        for line in text.splitlines()
        if not re.match(r"(# (HELP|TYPE) )?process_", line)
    ) + "\n"


def build():
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "--bin", "meta-messaging-exporter",
         "--example", "simulated_graph_api"],
        cwd=ROOT,
        check=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--latency", type=seconds, default=seconds("300ms"),
                        help="Meta's answer time per HTTP request (default 300ms)")
    parser.add_argument("--batch-entry-latency", type=seconds, default=seconds("10ms"),
                        help="added to a batch call per entry (default 10ms)")
    parser.add_argument("--batch", choices=["on", "off"], default="on",
                        help="polling.batch (default on)")
    parser.add_argument("--tokens", type=int, default=1,
                        help="tokens the Pages are spread over (default 1; --pages: one each)")
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument("--vs-pushgateway", action="store_true")
    parser.add_argument("--no-build", action="store_true", help="use the binaries as built")
    parser.add_argument("--cycle-deadline", type=float, default=3600,
                        help="give up on the first cycle after this many seconds")
    args = parser.parse_args()
    if not 1 <= args.scrapes <= 200:
        parser.error("--scrapes must be between 1 and 200")
    if args.pages < 1 or args.tokens < 1:
        parser.error("--pages and --tokens must be at least 1")
    pushgateway = shutil.which("prometheus-pushgateway")
    if args.vs_pushgateway and not pushgateway:
        parser.error("--vs-pushgateway needs prometheus-pushgateway (apt-get install prometheus-pushgateway)")
    if not args.no_build:
        build()

    processes = []
    workdir = tempfile.mkdtemp(prefix="load-bench-")

    def stop_all():
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    try:
        config = os.path.join(workdir, "config.yaml")
        simulator = subprocess.Popen(
            [SIMULATOR, "--pages", str(args.pages), "--campaigns", "0", "--wabas", "0",
             "--page-metrics", "flat", "--tokens", str(args.tokens), "--interval", "1h",
             "--latency", f"{args.latency * 1000:.0f}ms",
             "--batch-entry-latency", f"{args.batch_entry_latency * 1000:.0f}ms",
             "--config-out", config],
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(simulator)
        # The simulator prints one line once the config is written.
        simulator.stderr.readline()
        with open(config, "a", encoding="utf-8") as file:
            file.write(f"polling:\n  startup_spread: 1s\n  batch: {'true' if args.batch == 'on' else 'false'}\n")

        port = free_port()
        started = time.monotonic()
        exporter = subprocess.Popen(
            [EXPORTER, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
             "--log.level=warn"],
            stdout=subprocess.DEVNULL,
        )
        processes.append(exporter)

        def scrape_text():
            try:
                status, body, _, _ = get(port, "/metrics")
            except OSError:
                return None
            return body.decode() if status == 200 else None

        def cycle_done():
            text = scrape_text()
            if text is None:
                return None
            polled = counter_sum(text, "meta_messaging_exporter_polls_total", 'kind="page"')
            return text if polled >= args.pages else None

        text = wait_until("every Page to poll once", cycle_done, args.cycle_deadline)
        cycle = time.monotonic() - started
        http_requests = counter_sum(text, "meta_messaging_exporter_api_http_requests_total")
        api_calls = counter_sum(text, "meta_messaging_exporter_api_requests_total")
        failed = counter_sum(text, "meta_messaging_exporter_polls_total", 'kind="page"') - \
            counter_sum(text, "meta_messaging_exporter_polls_total", 'result="success"')
        series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        ideal = api_calls * args.latency / DEFAULT_CONCURRENCY
        # Resident memory once the allocator has handed back what the cycle freed (jemalloc
        # purges freed pages after 10 s); the peak is reported beside it.
        time.sleep(SETTLE_SECONDS)
        rss, peak = rss_kib(exporter.pid)
        result = {
            "pages": args.pages,
            "tokens": args.tokens,
            "batch": args.batch,
            "latency_ms": args.latency * 1000,
            "batch_entry_latency_ms": args.batch_entry_latency * 1000,
            "series": series,
            "first_cycle_s": round(cycle, 1),
            "ideal_single_calls_s": round(ideal, 1),
            "http_requests_per_cycle": http_requests,
            "api_calls_per_cycle": api_calls,
            "failed_polls": failed,
            "exporter_rss_mib": round(rss / 1024, 1),
            "exporter_peak_rss_mib": round(peak / 1024, 1),
            "exporter": measure_scrapes(port, args.scrapes),
        }

        if args.vs_pushgateway:
            gateway_port = free_port()
            gateway = subprocess.Popen(
                [pushgateway, f"--web.listen-address=127.0.0.1:{gateway_port}",
                 "--log.level=warn"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            processes.append(gateway)
            wait_until("the Pushgateway", lambda: scrape_port_ok(gateway_port), 30, 0.2)
            payload = without_process_families(scrape_text()).encode()
            connection = http.client.HTTPConnection("127.0.0.1", gateway_port, timeout=300)
            connection.request("PUT", "/metrics/job/load", body=payload,
                               headers={"Content-Type": "text/plain; version=0.0.4"})
            response = connection.getresponse()
            answer = response.read().decode(errors="replace")
            if response.status not in (200, 202):
                raise SystemExit(f"the Pushgateway refused the push: {response.status} {answer}")
            time.sleep(3)
            gateway_rss, gateway_peak = rss_kib(gateway.pid)
            result["pushgateway_rss_mib"] = round(gateway_rss / 1024, 1)
            result["pushgateway_peak_rss_mib"] = round(gateway_peak / 1024, 1)
            result["pushgateway"] = measure_scrapes(gateway_port, args.scrapes)
            result["ratios"] = {
                kind: round(result["exporter"][kind]["median_ms"]
                            / result["pushgateway"][kind]["median_ms"], 3)
                for kind in ("plain", "gzip")
            }
            result["ratios"]["rss"] = round(rss / gateway_rss, 2)
    finally:
        stop_all()

    print(json.dumps(result, indent=2))
    print_table(result, file=sys.stderr)


def scrape_port_ok(port):
    try:
        return get(port, "/metrics", timeout=5)[0] == 200
    except OSError:
        return False


def print_table(result, file):
    mib = lambda size: f"{size / 1e6:.1f} MB"
    lines = [
        f"{result['pages']} Pages, {result['series']} series, batch {result['batch']}, "
        f"{result['tokens']} token(s), latency {result['latency_ms']:.0f} ms "
        f"(+{result['batch_entry_latency_ms']:.0f} ms per batch entry)",
        f"first cycle {result['first_cycle_s']} s (ideal for single calls "
        f"{result['ideal_single_calls_s']} s); {result['http_requests_per_cycle']:.0f} HTTP "
        f"requests carrying {result['api_calls_per_cycle']:.0f} calls",
        "| | median plain | median gzip | body plain | body gzip | resident |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, rss_key in (("exporter", "exporter_rss_mib"), ("pushgateway", "pushgateway_rss_mib")):
        if name in result:
            row = result[name]
            lines.append(
                f"| {name} | {row['plain']['median_ms']} ms | {row['gzip']['median_ms']} ms | "
                f"{mib(row['plain']['bytes'])} | {mib(row['gzip']['bytes'])} | "
                f"{result[rss_key]} MiB |"
            )
    if "ratios" in result:
        ratios = result["ratios"]
        lines.append(
            f"exporter / Pushgateway: plain {ratios['plain']}, gzip {ratios['gzip']}, "
            f"memory {ratios['rss']}"
        )
    print("\n".join(lines), file=file)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""How long after a (re)start the exporter serves the series of every Page.

Starts the sizing simulator (examples/simulated_graph_api) with N Pages at a long interval,
then starts the release exporter against it several times and measures, each time, how long
until /metrics carries a series for every Page. Loopback only; every loop is bounded.

    cargo build --release --locked --bin meta-messaging-exporter --example simulated_graph_api
    python3 benches/restart_fill.py --pages 100 --interval 15m --runs 5

Prints one line per run and the median.
"""

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pages_served(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            body = r.read().decode()
    except OSError:
        return -1
    return len(set(re.findall(r'^meta_page_[a-z_]+\{[^}]*page_id="([0-9]+)"', body, re.M)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--interval", default="15m")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--exporter", default="target/release/meta-messaging-exporter")
    parser.add_argument("--simulator", default="target/release/examples/simulated_graph_api")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp()
    config = os.path.join(workdir, "config.yaml")
    simulator = subprocess.Popen(
        [args.simulator, "--pages", str(args.pages), "--campaigns", "0", "--wabas", "0",
         "--interval", args.interval, "--config-out", config],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(config) and os.path.getsize(config) > 0:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        results = []
        for run in range(args.runs):
            port = free_port()
            started = time.monotonic()
            exporter = subprocess.Popen(
                [args.exporter, f"--config.file={config}",
                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                elapsed = None
                while time.monotonic() - started < args.timeout:
                    if pages_served(port) >= args.pages:
                        elapsed = time.monotonic() - started
                        break
                    time.sleep(0.1)
            finally:
                exporter.send_signal(signal.SIGTERM)
                exporter.wait(timeout=30)
            print(f"run {run + 1}: all {args.pages} Pages served after "
                  + (f"{elapsed:.1f} s" if elapsed is not None else f"more than {args.timeout} s"))
            if elapsed is not None:
                results.append(elapsed)
        if results:
            print(f"median: {statistics.median(results):.1f} s over {len(results)} runs")
    finally:
        simulator.send_signal(signal.SIGINT)
        simulator.wait(timeout=30)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Login under a password flood: the release exporter with basic auth at bcrypt cost 10.

Usage:
  benches/auth_flood.py [--flooders 250] [--sources 1] [--warmup 15] [--seconds 30]
                        [--logins 20]

Starts `--demo` with a web config holding one user (a cost-10 hash made here with the `bcrypt`
package from PyPI), then --flooders threads loop on wrong passwords, spread over --sources
loopback addresses (127.0.1.x). After --warmup seconds of flood (long enough for every
flooding address to have failed once) it times, from 127.0.0.2, the first login with the
correct password (not cached yet: a full bcrypt check) and then --logins more (cached), each
on a fresh connection, and reports their status and time to the last byte: median and
maximum, with the flood's own answers by status. A measurement, not a test: CI does not run it.
"""

import argparse
import base64
import collections
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import bcrypt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORTER = os.path.join(ROOT, "target", "release", "meta-messaging-exporter")
USER = "prometheus"
PASSWORD = "correct horse battery staple"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(port, password, source, timeout=30):
    """(status, seconds) of GET /metrics with `password`, from `source`."""
    credentials = base64.b64encode(f"{USER}:{password}".encode()).decode()
    started = time.monotonic()
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        connection.request("GET", "/metrics", headers={"Authorization": f"Basic {credentials}"})
        response = connection.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    except OSError as error:
        return f"error: {error.__class__.__name__}", time.monotonic() - started
    finally:
        connection.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flooders", type=int, default=250)
    parser.add_argument("--sources", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=15)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--logins", type=int, default=20)
    args = parser.parse_args()
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    with tempfile.TemporaryDirectory() as workdir:
        web_config = os.path.join(workdir, "web.yaml")
        with open(web_config, "w") as file:
            file.write(f"basic_auth_users:\n  {USER}: \"{hashed}\"\n")
        port = free_port()
        exporter = subprocess.Popen(
            [EXPORTER, "--demo", f"--web.listen-address=127.0.0.1:{port}",
             f"--web.config.file={web_config}", "--log.level=error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while get(port, "wrong", "127.0.0.3", timeout=2)[0] != 401:
                if time.monotonic() > deadline:
                    sys.exit("the exporter did not start")
                time.sleep(0.2)
            stop = threading.Event()
            flood = collections.Counter()
            lock = threading.Lock()

            def flooder(n):
                source = f"127.0.1.{1 + n % args.sources}"
                while not stop.is_set():
                    status, _ = get(port, f"wrong-{n}", source)
                    with lock:
                        flood[str(status)] += 1

            threads = [threading.Thread(target=flooder, args=(n,), daemon=True)
                       for n in range(args.flooders)]
            for thread in threads:
                thread.start()
            time.sleep(args.warmup)  # the flood at full strength before the first login
            first = get(port, PASSWORD, "127.0.0.2")
            cached = [get(port, PASSWORD, "127.0.0.2") for _ in range(args.logins)]
            remaining = (args.seconds - args.warmup - first[1]
                         - sum(seconds for _, seconds in cached))
            time.sleep(max(0.0, remaining))
            stop.set()
            for thread in threads:
                thread.join(timeout=35)
        finally:
            exporter.send_signal(signal.SIGTERM)
            exporter.wait(timeout=30)
    times = [seconds for status, seconds in cached if status == 200]
    result = {
        "flooders": args.flooders,
        "sources": args.sources,
        "warmup_seconds": args.warmup,
        "first_login": {"status": first[0], "seconds": round(first[1], 3)},
        "cached_logins_ok": f"{len(times)} of {len(cached)}",
        "cached_login_median_seconds": round(statistics.median(times), 4) if times else None,
        "cached_login_max_seconds": round(max(times), 4) if times else None,
        "flood_answers": dict(flood),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Slow-header clients against a running exporter: memory and open connections before, during
and after.

Usage: benches/slow_clients.py --port 19873 --pid "$(pgrep -n meta-messaging)" [--clients 5000] [--wait 15]

Opens --clients TCP connections to 127.0.0.1:PORT (loopback only), each sending half a request
header and then nothing, holds them, and samples the exporter's VmRSS (/proc/PID/status) and the
number of ESTABLISHED sockets on its port (`ss`, server side), and makes one fresh scrape while
the connections are held. It then waits --wait seconds (set it past --web.read-header-timeout)
and samples again, closes its sockets, and prints one JSON object. Everything is bounded: at
most 20,000 clients, one pass, no retries.
"""

import argparse
import json
import socket
import subprocess
import time
import urllib.request

PARTIAL = b"GET /metrics HTTP/1.1\r\nHost: exp"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def established(port):
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def sample(pid, port):
    return {"rss_mib": round(rss_kib(pid) / 1024, 1), "established": established(port)}


def scrape(port):
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            body = response.read()
            return {"status": response.status, "bytes": len(body),
                    "seconds": round(time.monotonic() - started, 3)}
    except OSError as error:
        return {"error": str(error)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--wait", type=float, default=15.0)
    args = parser.parse_args()
    if not 1 <= args.clients <= 20000:
        parser.error("--clients must be between 1 and 20000")

    result = {"clients": args.clients, "before": sample(args.pid, args.port)}
    sockets, refused = [], 0
    for _ in range(args.clients):
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            client.connect(("127.0.0.1", args.port))
            client.sendall(PARTIAL)
            sockets.append(client)
        except OSError:
            refused += 1
            client.close()
    time.sleep(1.0)
    result["during"] = sample(args.pid, args.port)
    result["during"]["connect_failures"] = refused
    result["fresh_scrape_during"] = scrape(args.port)
    time.sleep(args.wait)
    result["after_wait"] = sample(args.pid, args.port)
    for client in sockets:
        client.close()
    time.sleep(1.0)
    result["after_close"] = sample(args.pid, args.port)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

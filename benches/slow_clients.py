#!/usr/bin/env python3
"""Slow clients against a running exporter: memory and open connections before, during and
after.

Usage: benches/slow_clients.py --port 19873 --pid "$(pgrep -n meta-messaging)" [--clients 5000] [--wait 15]
       [--mode slow-headers|slow-readers] [--sources 1] [--pipeline 1]

Opens --clients TCP connections to PORT on loopback, spread round-robin over --sources source
addresses (127.0.0.1, 127.0.0.2, ...: every 127.0.0.0/8 address is loopback on Linux, and each
is another client to the exporter, so --sources 1 exercises --web.max-connections-per-client).
In `slow-headers` mode each sends half a request header and then nothing. In `slow-readers`
mode each asks for /metrics (--pipeline times, pipelined) with a 4 KiB receive buffer and then
reads one byte every 100 ms, which --web.min-write-rate should cut off within two
--web.write-rate-window. It holds them, samples the exporter's VmRSS (/proc/PID/status) and the
number of ESTABLISHED sockets on its port (`ss`, server side), and makes one fresh scrape while
the connections are held. It then waits --wait seconds (set it past --web.read-header-timeout,
or past two write-rate windows), samples again and scrapes again, closes its sockets, and
prints one JSON object. Everything is bounded: at most 20,000 clients and 254 sources, one
pass, no retries.
"""

import argparse
import json
import socket
import subprocess
import time
import urllib.request

PARTIAL = b"GET /metrics HTTP/1.1\r\nHost: exp"
REQUEST = b"GET /metrics HTTP/1.1\r\nHost: exporter\r\n\r\n"


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
    parser.add_argument("--mode", choices=["slow-headers", "slow-readers"], default="slow-headers")
    parser.add_argument("--sources", type=int, default=1)
    parser.add_argument("--pipeline", type=int, default=1)
    args = parser.parse_args()
    if not 1 <= args.clients <= 20000:
        parser.error("--clients must be between 1 and 20000")
    if not 1 <= args.sources <= 254:
        parser.error("--sources must be between 1 and 254")
    if not 1 <= args.pipeline <= 1000:
        parser.error("--pipeline must be between 1 and 1000")
    payload = PARTIAL if args.mode == "slow-headers" else REQUEST * args.pipeline

    result = {"clients": args.clients, "mode": args.mode, "sources": args.sources,
              "before": sample(args.pid, args.port)}
    sockets, refused = [], 0
    for index in range(args.clients):
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if args.mode == "slow-readers":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.bind((f"127.0.0.{index % args.sources + 1}", 0))
            client.connect(("127.0.0.1", args.port))
            client.sendall(payload)
            client.setblocking(False)
            sockets.append(client)
        except OSError:
            refused += 1
            client.close()
    closed_by_server = set()

    def read_slowly(seconds):
        # One byte per socket every 100 ms; a socket the server closed is noted once.
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if args.mode == "slow-readers":
                for client in sockets:
                    if client.fileno() in closed_by_server:
                        continue
                    try:
                        if client.recv(1) == b"":
                            closed_by_server.add(client.fileno())
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed_by_server.add(client.fileno())
            time.sleep(0.1)

    read_slowly(1.0)
    result["during"] = sample(args.pid, args.port)
    result["during"]["connect_failures"] = refused
    result["fresh_scrape_during"] = scrape(args.port)
    read_slowly(args.wait)
    result["after_wait"] = sample(args.pid, args.port)
    result["after_wait"]["seen_closed_by_server"] = len(closed_by_server)
    result["fresh_scrape_after_wait"] = scrape(args.port)
    for client in sockets:
        client.close()
    time.sleep(1.0)
    result["after_close"] = sample(args.pid, args.port)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

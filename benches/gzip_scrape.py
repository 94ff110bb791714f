#!/usr/bin/env python3
"""Plain versus gzip scrapes of a running exporter: body bytes and median latency.

Usage: benches/gzip_scrape.py --port 19874 [--scrapes 30] [--path /metrics]

Scrapes http://127.0.0.1:PORT/metrics (loopback only) --scrapes times without and then with
`Accept-Encoding: gzip`, alternating so both see the same load, one request at a time over a
fresh connection each, and prints one JSON object with the median and range of the body size
and of the time to the last byte. Bounded: at most 200 scrapes each.
"""

import argparse
import gzip
import http.client
import json
import statistics
import time


def scrape(port, path, encoding):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Accept-Encoding": encoding} if encoding else {"Accept-Encoding": "identity"}
    started = time.monotonic()
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    elapsed = time.monotonic() - started
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"status {response.status}")
    if encoding:
        assert response.getheader("Content-Encoding") == "gzip"
        text = gzip.decompress(body)
    else:
        text = body
    return len(body), elapsed, text.count(b"\n")


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument("--path", default="/metrics")
    args = parser.parse_args()
    if not 1 <= args.scrapes <= 200:
        parser.error("--scrapes must be between 1 and 200")
    runs = {"plain": [], "gzip": []}
    for _ in range(args.scrapes):
        runs["plain"].append(scrape(args.port, args.path, None))
        runs["gzip"].append(scrape(args.port, args.path, "gzip"))
    result = {}
    for name, samples in runs.items():
        result[name] = {
            "bytes": summary([size for size, _, _ in samples]),
            "ms": {k: round(v * 1000, 1) for k, v in summary([t for _, t, _ in samples]).items()},
            "lines": summary([lines for _, _, lines in samples]),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

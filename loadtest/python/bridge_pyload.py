#!/usr/bin/python3
"""bridge-pyload: the Python client under load, reported like bridge-loadtest's streams.

    bridge_pyload.py --broker tcp://127.0.0.1:5555 --kernel passthrough --bytes 16 --concurrency 64 \
        --duration 10 --warmup 3 [--tenant T] [--json FILE]

Closed loop: `concurrency` jobs in flight, each answer sending the next (from the client's delivery
thread, through Future.add_done_callback), for `warmup` seconds unmeasured, then `duration` measured.
A job counts if it was sent inside the measured window, as bridge-loadtest counts: with a few large
jobs in flight, counting only those that also end inside it would leave out about `concurrency` jobs.
Inputs are one float32 array of `bytes` bytes (uint8 below 4 bytes), sent without a copy. Keys come
from --key-file/--broker-key-file, or GPUBRIDGE_KEYS_DIR/TENANT.key and GPUBRIDGE_KEYS_DIR/broker.pub as
bridge-loadtest reads them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import numpy as np

import gpubridge


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--broker", default="tcp://127.0.0.1:5555")
    p.add_argument("--tenant", default="")
    p.add_argument("--key-file", default="")
    p.add_argument("--broker-key-file", default="")
    p.add_argument("--kernel", default="passthrough")
    p.add_argument("--bytes", type=int, default=16, help="bytes of the one input tensor")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--json", default="", help="write the report here")
    args = p.parse_args()
    keys = os.environ.get("GPUBRIDGE_KEYS_DIR", "")
    if keys and not args.key_file and args.tenant:
        args.key_file = os.path.join(keys, f"{args.tenant}.key")
        args.broker_key_file = os.path.join(keys, "broker.pub")
    return args


class ClosedLoop:
    """`concurrency` jobs in flight; the jobs sent between `measure_from` and `stop_at` are counted."""

    def __init__(self, client: gpubridge.Client, kernel: str, inputs, concurrency: int) -> None:
        self.client, self.kernel, self.inputs, self.concurrency = client, kernel, inputs, concurrency
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.measure_from = self.stop_at = 0.0
        self.running = concurrency
        self.finished = threading.Event()

    def run(self, warmup: float, duration: float) -> None:
        now = time.perf_counter()
        self.measure_from, self.stop_at = now + warmup, now + warmup + duration
        for _ in range(self.concurrency):
            self.launch()
        self.finished.wait()

    def launch(self) -> None:
        started = time.perf_counter()
        self.client.submit(self.kernel, self.inputs).add_done_callback(lambda f: self.done(f, started))

    def done(self, future, started: float) -> None:
        now = time.perf_counter()
        error = future.exception()
        # Counted as bridge-loadtest counts: every job sent inside the window, however late it ends
        # (the loop stops sending at the window's end, then waits for the last ones).
        if self.measure_from <= started:
            if error is None:
                self.latencies.append(now - started)
            else:
                code = getattr(error, "code", type(error).__name__)
                self.errors[code] = self.errors.get(code, 0) + 1
        if now < self.stop_at:
            self.launch()
            return
        self.running -= 1  # only the delivery thread runs callbacks: no lock needed
        if self.running == 0:
            self.finished.set()


def main() -> int:
    args = parse()
    if args.bytes >= 4:
        inputs = [np.ones(args.bytes // 4, np.float32)]
    else:
        inputs = [np.ones(args.bytes, np.uint8)]
    with gpubridge.Client(args.broker, args.tenant, key_file=args.key_file,
                          broker_key_file=args.broker_key_file, timeout=60) as client:
        loop = ClosedLoop(client, args.kernel, inputs, args.concurrency)
        loop.run(args.warmup, args.duration)
    lat = np.sort(np.array(loop.latencies)) * 1e3
    ok = len(lat)

    def pct(q: float) -> float:
        return float(np.percentile(lat, q)) if ok else 0.0

    row = {"name": "python", "kernel": args.kernel, "bytes": args.bytes, "concurrency": args.concurrency,
           "ok": ok, "ok_per_s": ok / args.duration, "mib_per_s": ok * args.bytes / args.duration / (1 << 20),
           "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": float(lat[-1]) if ok else 0.0,
           "errors": loop.errors}
    print(f"python  {args.kernel} {args.bytes} B x{args.concurrency}: {row['ok_per_s']:.0f} ok/s, "
          f"{row['mib_per_s']:.1f} MiB/s, p50 {row['p50_ms']:.3f} ms, p99 {row['p99_ms']:.3f} ms, "
          f"errors {loop.errors or 'none'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"duration_s": args.duration, "warmup_s": args.warmup, "streams": [row]}, f)
    return 0 if not loop.errors else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""A matrix product from numpy on the fleet, checked against numpy's own.

    examples/python/matmul.py --broker tcp://127.0.0.1:5555 --key-file team-a.key --broker-key-file broker.pub
"""
import argparse

import numpy as np

import gpubridge

p = argparse.ArgumentParser()
p.add_argument("--broker", default="tcp://127.0.0.1:5555")
p.add_argument("--key-file", default="")
p.add_argument("--broker-key-file", default="")
args = p.parse_args()

rng = np.random.default_rng(0)
a = rng.uniform(-1, 1, (256, 128)).astype(np.float32)
b = rng.uniform(-1, 1, (128, 64)).astype(np.float32)
with gpubridge.Client(args.broker, key_file=args.key_file, broker_key_file=args.broker_key_file) as client:
    result = client.run("matmul", [a, b], placement="prefer-gpu")
c = result[0]  # a numpy array over the received bytes
error = float(np.abs(c - a @ b).max())
print(f"matmul {a.shape} x {b.shape} on {result.worker_id} ({result.device_kind}, {result.device_name}): "
      f"max |error| {error:.2e}, compute {result.timings['compute'] * 1e3:.2f} ms, total {result.timings['total'] * 1e3:.2f} ms"
      + (f"; on the CPU because {result.fallback_reason}" if result.fallback_reason else ""))
assert error < 1e-3

#!/usr/bin/python3
"""An image pipeline: resize, blur and normalise in one job, on one worker (intermediates stay on the
device on a GPU worker), against the same three stages sent as separate jobs.

    examples/python/image_pipeline.py --broker ... --key-file ... --broker-key-file ...
"""
import argparse

import numpy as np

import gpubridge

p = argparse.ArgumentParser()
p.add_argument("--broker", default="tcp://127.0.0.1:5555")
p.add_argument("--key-file", default="")
p.add_argument("--broker-key-file", default="")
args = p.parse_args()

image = np.random.default_rng(1).uniform(0, 255, (480, 640, 3)).astype(np.float32)
pipeline = (gpubridge.Pipeline()
            .then("resize", height=224, width=224)
            .then("blur", sigma=1.0)
            .then("normalize", scale=1 / 255, shift=-0.5))
with gpubridge.Client(args.broker, key_file=args.key_file, broker_key_file=args.broker_key_file) as client:
    result = client.run(pipeline, [image])
    step = client.run("resize", [image], {"height": 224, "width": 224})[0]
    step = client.run("blur", [step], {"sigma": 1.0})[0]
    step = client.run("normalize", [step], {"scale": 1 / 255, "shift": -0.5})[0]
out = result[0]
print(f"pipeline {image.shape} -> {out.shape} on {result.worker_id}: "
      + ", ".join(f"{k} {s * 1e3:.2f} ms" for k, s in result.stage_timings)
      + f"; same as three jobs: max |difference| {float(np.abs(out - step).max()):.1e}")
assert out.shape == (224, 224, 3) and np.allclose(out, step, atol=1e-5)

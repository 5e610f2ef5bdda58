#!/usr/bin/python3
"""An actor holding a model's weights: uploaded once, then each call sends only its input and names
the weights as a resident tensor. The actor's state survives its worker (written through to Redis).

    examples/python/actor_weights.py --broker ... --key-file ... --broker-key-file ...
"""
import argparse

import numpy as np

import gpubridge

p = argparse.ArgumentParser()
p.add_argument("--broker", default="tcp://127.0.0.1:5555")
p.add_argument("--key-file", default="")
p.add_argument("--broker-key-file", default="")
p.add_argument("--actor", default="example-model")
args = p.parse_args()

rng = np.random.default_rng(2)
weights = rng.uniform(-0.1, 0.1, (512, 10)).astype(np.float32)
with gpubridge.Client(args.broker, key_file=args.key_file, broker_key_file=args.broker_key_file) as client:
    model = client.actor(args.actor)
    model.put("weights", weights)  # 20 KiB, once
    for batch in range(3):
        x = rng.uniform(-1, 1, (32, 512)).astype(np.float32)
        logits = model.call("matmul", [x, gpubridge.Resident("weights")])
        probabilities = client.run("softmax", [logits[0]])[0]
        assert np.allclose(logits[0], x @ weights, atol=1e-4)
        print(f"batch {batch}: sent {x.nbytes} bytes (weights stayed on {logits.worker_id}), "
              f"top classes {probabilities.argmax(axis=1)[:8].tolist()}")
    info = model.info()
print(f"actor {args.actor}: version {info['version']}, resident {[(r['name'], r['shape']) for r in info['resident']]}")

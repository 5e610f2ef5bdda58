#!/usr/bin/python3
"""asyncio fan-out: 200 jobs in flight from one coroutine, gathered as they finish.

    examples/python/asyncio_fanout.py --broker ... --key-file ... --broker-key-file ...
"""
import argparse
import asyncio
import time

import numpy as np

import gpubridge

p = argparse.ArgumentParser()
p.add_argument("--broker", default="tcp://127.0.0.1:5555")
p.add_argument("--key-file", default="")
p.add_argument("--broker-key-file", default="")
p.add_argument("--jobs", type=int, default=200)
args = p.parse_args()


async def main() -> None:
    with gpubridge.Client(args.broker, key_file=args.key_file, broker_key_file=args.broker_key_file,
                          retry_attempts=5) as client:
        vectors = [np.full(1024, i, np.float32) for i in range(args.jobs)]
        start = time.perf_counter()
        results = await asyncio.gather(*(client.run_async("reduce_sum", [v]) for v in vectors),
                                       return_exceptions=True)
        elapsed = time.perf_counter() - start
    failed = [r for r in results if isinstance(r, BaseException)]
    done = [(i, r) for i, r in enumerate(results) if not isinstance(r, BaseException)]
    for i, r in done:  # gather keeps the order of the jobs
        assert float(r[0]) == 1024.0 * i, (i, float(r[0]))
    workers = {r.worker_id for _, r in done}
    print(f"{len(done)} of {args.jobs} jobs in {elapsed:.2f} s on {len(workers)} worker(s)"
          + (f"; {len(failed)} refused: {failed[0]}" if failed else ""))


asyncio.run(main())

#!/usr/bin/python3
"""Celery peer baseline: the fleet's tiny job (a 16-byte passthrough) through Celery with a Redis
broker, closed loop with CONCURRENCY requests in flight, measured like bridge-loadtest (throughput
and latency after a warm-up). Starts its own Celery worker (WORKERS processes) against the Redis at
--redis, runs, stops it, and prints one JSON line. The requests come from CLIENTS processes (each
with its share of the CONCURRENCY threads), so that one Python process's GIL does not cap Celery.

  /usr/bin/python3 loadtest/celery/celery_baseline.py --redis redis://127.0.0.1:PORT/0 --duration 10 [--clients 4]
"""
import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time


def client_process(here, redis, payload, window, end, threads, results):
    """One client process: THREADS closed loops until END; puts the latencies after WINDOW."""
    sys.path.insert(0, here)
    os.environ["BRIDGE_CELERY_REDIS"] = redis
    import bridge_celery_tasks  # noqa: E402  (a fresh import: its own connections)

    latencies = []
    lock = threading.Lock()

    def loop():
        mine = []
        while True:
            sent = time.time()
            if sent >= end:
                break
            bridge_celery_tasks.passthrough.delay(payload).get(timeout=60)
            if sent >= window:
                mine.append(time.time() - sent)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    results.put(latencies)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--bytes", type=int, default=16)
    parser.add_argument("--clients", type=int, default=1, help="client processes sharing the concurrency")
    args = parser.parse_args()

    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, BRIDGE_CELERY_REDIS=args.redis, PYTHONPATH=here)
    sys.path.insert(0, here)
    os.environ["BRIDGE_CELERY_REDIS"] = args.redis
    import bridge_celery_tasks  # noqa: E402  (reads the Redis URL from the environment)

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bridge_celery_tasks", "worker", "--loglevel=WARNING",
         "--pool=prefork", f"--concurrency={args.workers}", "--without-gossip", "--without-mingle",
         "--without-heartbeat"],
        cwd=here, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        payload = "x" * args.bytes
        deadline = time.time() + 60
        while True:  # wait until a worker answers
            try:
                bridge_celery_tasks.passthrough.delay(payload).get(timeout=5)
                break
            except Exception:  # noqa: BLE001  (not up yet)
                if time.time() > deadline:
                    raise SystemExit("celery worker did not start")
        start = time.time() + 1  # the client processes' start-up is not measured
        window = start + args.warmup
        end = window + args.duration
        # Spawned, not forked: a forked child would share this process's Redis connections.
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        clients = max(1, min(args.clients, args.concurrency))
        shares = [args.concurrency // clients + (1 if i < args.concurrency % clients else 0) for i in range(clients)]
        processes = [context.Process(target=client_process, args=(here, args.redis, payload, window, end, n, results))
                     for n in shares]
        for p in processes:
            p.start()
        latencies = []
        for _ in processes:
            latencies.extend(results.get())
        for p in processes:
            p.join()
        latencies.sort()
        ok = len(latencies)
        p50 = latencies[ok // 2] * 1000 if ok else 0
        p99 = latencies[min(ok - 1, int(ok * 0.99))] * 1000 if ok else 0
        print(json.dumps({"ok": ok, "ok_per_s": ok / args.duration, "p50_ms": p50, "p99_ms": p99,
                          "workers": args.workers, "concurrency": args.concurrency, "clients": clients}))
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()


if __name__ == "__main__":
    main()

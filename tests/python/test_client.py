"""Futures, asyncio, the GIL, batches, pipelines, actors, streams and reports, against a real fleet."""

import asyncio
import concurrent.futures
import threading
import time

import numpy as np
import pytest

import gpubridge
from fleet import Fleet, wait_until


def test_submit_returns_a_concurrent_future(client):
    future = client.submit("vector_add", [np.ones(3, np.float32), np.full(3, 2, np.float32)])
    assert isinstance(future, concurrent.futures.Future) and future.job_id > 0
    result = future.result(timeout=10)
    np.testing.assert_array_equal(result[0], [3, 3, 3])
    assert result.worker_id.startswith("worker-") and result.device_kind == "cpu" and result.device_name
    assert result.fallback_reason == "" and result.attempts == 1
    assert result.timings["total"] > 0 and set(result.timings) == {"queued", "transfer", "compute", "total"}
    assert result.job_id == future.job_id
    done = concurrent.futures.wait([client.submit("sleep", [], {"ms": 1}) for _ in range(20)], timeout=10)
    assert len(done.done) == 20


def test_asyncio_fan_out(client):
    async def fan_out():
        arrays = [np.full(4, i, np.float32) for i in range(32)]
        results = await asyncio.gather(*(client.run_async("vector_add", [a, a]) for a in arrays))
        return [float(r[0][0]) for r in results]

    assert asyncio.run(fan_out()) == [2.0 * i for i in range(32)]


def test_asyncio_errors_are_raised_in_the_coroutine(client):
    async def bad():
        await client.run_async("no_such_kernel")

    with pytest.raises(gpubridge.UnknownKernel):
        asyncio.run(bad())


def test_the_gil_is_released_while_run_waits(client):
    # A Python thread keeps counting while the main thread waits 1 s for a job.
    counted = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counted[0] += 1

    t = threading.Thread(target=count)
    t.start()
    time.sleep(0.05)
    before = counted[0]
    client.run("sleep", [], {"ms": 1000})
    during = counted[0] - before
    stop.set()
    t.join()
    # Holding the GIL for the whole second would leave the counter where it was (give or take the
    # switch interval): it moves by hundreds of thousands when the wait releases it.
    assert during > 10000, during


def test_python_threads_asyncio_and_the_io_thread_together(client):
    # Four threads submitting and waiting, an asyncio loop fanning out, and callbacks that submit more
    # jobs from the delivery thread: every job answered once, no deadlock.
    answers = []
    lock = threading.Lock()

    def worker(n):
        for i in range(25):
            value = client.run("vector_add", [np.full(2, n, np.float32), np.full(2, i, np.float32)])[0][0]
            with lock:
                answers.append(value)

    chained = []

    def on_done(future):
        chained.append(client.submit("sleep", [], {"ms": 1}))  # from the delivery thread

    for _ in range(10):
        client.submit("sleep", [], {"ms": 1}).add_done_callback(on_done)

    async def loop_side():
        return await asyncio.gather(*(client.run_async("sleep", [], {"ms": 1}) for _ in range(50)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    assert len(asyncio.run(loop_side())) == 50
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 100
    assert wait_until(lambda: len(chained) == 10)
    for f in chained:
        f.result(timeout=10)


def test_submit_batch_keeps_the_order(client):
    inputs = [[np.full(8, i, np.float32), np.ones(8, np.float32)] for i in range(16)]
    futures = client.submit_batch("vector_add", inputs)
    assert [float(f.result()[0][0]) for f in futures] == [i + 1.0 for i in range(16)]


def test_batched_sends_holds_this_threads_jobs_until_the_block_ends(client):
    with client.batched_sends():
        futures = [client.submit("vector_add", [np.full(2, i, np.float32), np.ones(2, np.float32)]) for i in range(10)]
        time.sleep(0.3)
        assert not any(f.done() for f in futures), "held jobs have not left the process"
        other = threading.Thread(target=lambda: client.run("sleep", [], {"ms": 1}))  # another thread: not held
        other.start()
        other.join(timeout=10)
        assert not other.is_alive()
    assert [float(f.result(timeout=10)[0][0]) for f in futures] == [i + 1.0 for i in range(10)]
    with client.batched_sends():  # run() sends what is held before it waits
        held = client.submit("sleep", [], {"ms": 1})
        assert client.run("vector_add", [np.ones(1, np.float32), np.ones(1, np.float32)])[0][0] == 2.0
        assert held.result(timeout=10) is not None
        assert client.status()["workers"]


def test_waiting_inside_batched_sends_sends_what_is_held_first(client):
    one = [np.ones(1, np.float32), np.ones(1, np.float32)]
    with client.batched_sends():
        held = client.submit("vector_add", one)
        assert held.result(timeout=10)[0][0] == 2.0  # result() sends it, then waits
        assert client.actor("batched-sends-actor").put("w", np.ones(2, np.float32)) is not None

        async def sibling():  # coroutines share this thread: async submits are never held
            return await client.run_async("vector_add", one)

        assert asyncio.run(asyncio.wait_for(sibling(), 10))[0][0] == 2.0

    def enter_then_yield():
        with client.batched_sends():
            yield client.submit("vector_add", one)

    steps = enter_then_yield()
    first = next(steps)  # a block entered here ...
    with client.batched_sends():
        ends_elsewhere = threading.Thread(target=lambda: next(steps, None))  # ... ends on another thread
        ends_elsewhere.start()
        ends_elsewhere.join(timeout=10)
        assert client.run("vector_add", one)[0][0] == 2.0
    assert first.result(timeout=10)[0][0] == 2.0


def test_jobs_submitted_from_done_callbacks_are_all_answered(client):
    # Done-callbacks run on the delivery thread, whose sends are held until each batch ends.
    answered, lock, done = [], threading.Lock(), threading.Event()

    def on_done(future, left):
        with lock:
            answered.append(future.result()[0][0])
            if len(answered) == 100:
                done.set()
        if left > 0:
            client.submit("vector_add", [np.ones(1, np.float32), np.ones(1, np.float32)]).add_done_callback(
                lambda f: on_done(f, left - 1))

    for _ in range(4):
        client.submit("vector_add", [np.ones(1, np.float32), np.ones(1, np.float32)]).add_done_callback(
            lambda f: on_done(f, 24))
    assert done.wait(timeout=30), f"{len(answered)} of 100 answered"
    assert answered == [2.0] * 100


def test_a_pipeline_runs_as_one_job(client):
    image = np.random.default_rng(1).uniform(0, 1, (32, 32)).astype(np.float32)
    pipeline = gpubridge.Pipeline().then("resize", height=16, width=16).then("blur", sigma=1.0)
    result = client.run(pipeline, [image])
    separate = client.run("blur", [client.run("resize", [image], {"height": 16, "width": 16})[0]], {"sigma": 1.0})
    np.testing.assert_allclose(result[0], separate[0], atol=1e-6)
    assert [k for k, _ in result.stage_timings] == ["resize", "blur"]
    with pytest.raises(ValueError, match="empty Pipeline"):
        client.submit(gpubridge.Pipeline(), [image])


def test_an_actor_keeps_weights_and_counts_versions(client):
    actor = client.actor("model-1")
    weights = np.random.default_rng(2).uniform(-1, 1, (16, 8)).astype(np.float32)
    put = actor.put("w", weights)
    assert put.kept == ["w"] and put.actor_version >= 1
    x = np.ones((4, 16), np.float32)
    y = actor.call("matmul", [x, gpubridge.Resident("w")])[0]
    np.testing.assert_allclose(y, x @ weights, atol=1e-4)
    kept = actor.call("matmul", [x, gpubridge.Resident("w")], keep=["y"])
    assert kept.kept == ["y"] and len(kept) == 0 and kept.actor_version == put.actor_version + 1
    np.testing.assert_allclose(actor.get("y"), x @ weights, atol=1e-4)
    info = actor.info()
    assert info["found"] and info["version"] == kept.actor_version
    assert {r["name"]: r["shape"] for r in info["resident"]} == {"w": (16, 8), "y": (4, 8)}
    assert info["resident"][0]["dtype"] == "float32"


def test_an_actor_whose_state_redis_lost_raises_data_loss_until_reset(fleet, client):
    actor = client.actor("lost-1")
    # What a broker writes when it finds Redis behind a version it acknowledged (a restart without
    # persistence, a fail-over to a replica that was behind), here before the actor's first call.
    assert fleet.redis("HSET", "bridge:actor:team-a/lost-1", "lost", "9") == b"1"
    with pytest.raises(gpubridge.DataLoss, match="actor team-a/lost-1 lost its state: version 9") as caught:
        actor.get("w")
    assert caught.value.code == "DATA_LOSS" and caught.value.value == 19
    assert actor.info()["lost_version"] == 9
    after = actor.reset()
    assert after["lost_version"] == 0 and after["version"] == 10 and after["resident"] == []
    with pytest.raises(gpubridge.InvalidArgument):
        actor.get("w")
    assert actor.put("w", np.full(4, 2, np.float32)).actor_version == 11
    np.testing.assert_array_equal(actor.get("w"), np.full(4, 2, np.float32))


def test_a_stream_answers_in_write_order(client):
    with client.stream("vector_add", window=4) as stream:
        def writer():
            for i in range(20):
                stream.write(np.full(3, i, np.float32), np.ones(3, np.float32))
            stream.close()

        t = threading.Thread(target=writer)
        t.start()
        sums = [float(r[0][0]) for r in stream]
        t.join()
    assert sums == [i + 1.0 for i in range(20)]


def test_a_stream_as_an_async_iterator(client):
    stream = client.stream("saxpy", {"alpha": 2.0}, window=8)
    for i in range(5):
        stream.write(np.full(2, i, np.float32), np.zeros(2, np.float32))
    stream.close()

    async def read_all():
        return [float(r[0][0]) async for r in stream]

    assert asyncio.run(read_all()) == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_a_full_window_fails_fast_when_asked(client):
    stream = client.stream("sleep", {"ms": 500}, window=1, block_when_full=False)
    stream.write()
    with pytest.raises(gpubridge.ResourceExhausted):
        stream.write()
    stream.close()
    assert len(list(stream)) == 1


def test_status_and_quotas(fleet):
    with fleet.client("operator") as ops:
        status = ops.status()
        assert status["redis_connected"] and len(status["workers"]) == 2
        assert {"id", "device", "kernels", "slots", "inflight", "metrics"} <= set(status["workers"][0])
        tenants = {t["tenant"]: t for t in ops.quotas()["tenants"]}
        assert tenants["tiny"]["max_inflight_jobs"] == 1
    with fleet.client("team-a") as c:
        mine = c.quotas("team-a")["tenants"]
        assert [t["tenant"] for t in mine] == ["team-a"]
        with pytest.raises(gpubridge.Error):
            c.quotas("team-b")  # another tenant's quotas are not this key's to read


def test_a_broker_restart_with_jobs_pending_loses_nothing():
    fleet = Fleet(workers=1, slots=2).start()
    try:
        with fleet.client("team-a", broker_check=0.2, timeout=30) as c:
            futures = [c.submit("sleep", [], {"ms": 300}) for _ in range(6)]
            time.sleep(0.1)
            fleet.restart_broker()
            results = [f.result(timeout=30) for f in futures]
            assert len(results) == 6
            assert c.resent_after_restart > 0
    finally:
        fleet.stop()


def test_waiting_inside_a_done_callback_is_refused_not_a_deadlock(client):
    seen = []
    done = threading.Event()

    def callback(_):
        try:
            client.run("sleep", [], {"ms": 1})
        except RuntimeError as e:
            seen.append(str(e))
        done.set()

    client.submit("sleep", [], {"ms": 1}).add_done_callback(callback)
    assert done.wait(10)
    assert seen and "done-callback" in seen[0]
    assert client.run("sleep", [], {"ms": 1}).worker_id  # the client still works

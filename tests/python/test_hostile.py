"""What a careless or hostile caller does with the Python client: every case here once crashed,
hung or silently misread in a review (the package's closing note for #16 lists them)."""

import collections
import os
import threading
import time
import types

import numpy as np
import pytest

import gpubridge
from fleet import wait_until


def test_inputs_from_a_sequence_that_makes_its_items_on_reading(client):
    ab = np.arange(20000, dtype=np.float32).reshape(2, 10000)  # rows are new views each time they are read
    for _ in range(20):
        np.testing.assert_array_equal(client.run("vector_add", ab)[0], ab[0] + ab[1])
    futures = client.submit_batch("vector_add", np.ones((4, 2, 100), np.float32))
    assert all(float(f.result()[0][0]) == 2.0 for f in futures)


def test_close_while_another_thread_submits(fleet):
    for _ in range(20):
        c = fleet.client()
        outcomes = []

        def submit_until_closed():
            try:
                while True:
                    outcomes.append(c.submit("passthrough", [np.ones(4, np.float32)]))
            except ValueError as e:
                outcomes.append(e)

        t = threading.Thread(target=submit_until_closed)
        t.start()
        time.sleep(0.02)
        c.close()
        t.join(10)
        assert not t.is_alive()
        assert isinstance(outcomes[-1], ValueError) and "closed" in str(outcomes[-1])
        for f in outcomes[:-1]:  # every job submitted is answered: served, refused or cancelled by the close
            error = f.exception(timeout=10)
            assert error is None or isinstance(error, gpubridge.Error), error


def test_a_stream_of_a_closed_client_refuses_writes(fleet):
    with fleet.client() as c:
        s = c.stream("passthrough", window=4)
    with pytest.raises(gpubridge.Error):
        s.write(np.ones(4, np.float32))


def test_closing_the_client_wakes_a_writer_waiting_for_room(fleet):
    c = fleet.client()
    s = c.stream("sleep", {"ms": 5000}, window=1)
    s.write()
    errors = []

    def second_write():
        try:
            s.write()
        except gpubridge.Error as e:
            errors.append(e)

    t = threading.Thread(target=second_write)
    t.start()
    time.sleep(0.3)
    c.close()
    t.join(10)
    assert not t.is_alive() and errors, "the writer still waits after close()"


def test_close_stops_the_pending_jobs_in_the_fleet(fleet):
    with fleet.client("operator") as ops:
        c = fleet.client("team-b")
        futures = [c.submit("sleep", [], {"ms": 20000}) for _ in range(30)]
        # (the broker leases quota in blocks, so it may count a few more than 30)
        assert wait_until(lambda: ops.quotas("team-b")["tenants"][0]["inflight_jobs"] >= 30)
        c.close()
        assert all(isinstance(f.exception(), gpubridge.Cancelled) for f in futures)
        # The broker was told: the tenant's quota and the workers' slots come back long before 20 s.
        assert wait_until(lambda: ops.quotas("team-b")["tenants"][0]["inflight_jobs"] == 0, timeout=10), \
            ops.quotas("team-b")


@pytest.mark.parametrize("params", [types.MappingProxyType({"scale": 2.0}), collections.UserDict({"scale": 2.0}),
                                    [("scale", 2.0)], {"scale": np.float32(2.0)}])
def test_params_in_any_mapping_are_honoured(client, params):
    x = np.ones(4, np.float32)
    np.testing.assert_array_equal(client.run("normalize", [x], params)[0], [2, 2, 2, 2])
    np.testing.assert_array_equal(client.run("normalize", [x], params, priority=1)[0], [2, 2, 2, 2])


@pytest.mark.parametrize("params, match", [({"alpha": "x"}, "'alpha' must be a number"),
                                           ({"alpha": None}, "'alpha' must be a number"),
                                           ({1: 2.0}, "a name must be a str"),
                                           ("alpha", "mapping of names to numbers")])
def test_bad_params_are_type_errors_that_say_what_to_pass(client, params, match):
    with pytest.raises((TypeError, ValueError), match=match):
        client.submit("saxpy", [np.ones(2, np.float32), np.ones(2, np.float32)], params)


def test_arguments_out_of_range_are_refused_before_anything_is_sent(fleet, client):
    with pytest.raises(TypeError, match="input 0 is None"):
        client.submit("passthrough", [None])
    for timeout in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match="timeout"):
            client.submit("sleep", [], {"ms": 1}, timeout=timeout)
        with pytest.raises(ValueError, match="timeout"):
            fleet.client(timeout=timeout)
    with pytest.raises(ValueError, match="priority 1000"):
        client.submit("sleep", [], {"ms": 1}, priority=1000)
    with pytest.raises(ValueError, match="garbage"):
        gpubridge.Client("garbage")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
def test_a_client_used_after_fork_says_to_make_a_new_one(client):
    client.run("sleep", [], {"ms": 1})
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if the client refuses with the right words
        try:
            client.submit("sleep", [], {"ms": 1})
            os._exit(2)
        except ValueError as e:
            os._exit(0 if "fork()" in str(e) else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.run("sleep", [], {"ms": 1}).worker_id  # the parent's client still works

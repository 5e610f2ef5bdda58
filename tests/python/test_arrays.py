"""Inputs and outputs without copies, and every kind of array-like input."""

import os
import subprocess
import sys

import numpy as np
import pytest


def test_an_output_array_owns_the_received_frame_without_a_copy(client):
    result = client.run("passthrough", [np.arange(1 << 16, dtype=np.float32)])
    out = result[0]
    # The array is a view over memory it does not own (the frame), and the same object every time.
    assert not out.flags.owndata and out.base is not None
    assert out.__array_interface__["data"][0] == result._output_address(0), "the array is a copy of the frame"
    assert result[0] is out
    assert out.flags.writeable and out.flags.c_contiguous
    out[0] = 42  # the frame is this result's alone
    assert result.outputs[0][0] == 42


def test_an_output_outlives_its_result_and_client(fleet):
    with fleet.client() as c:
        out = c.run("vector_add", [np.ones(5, np.float32), np.ones(5, np.float32)])[0]
    del c
    np.testing.assert_array_equal(out, np.full(5, 2, np.float32))


def test_a_large_contiguous_input_is_sent_without_a_copy(fleet):
    # The client holds the caller's array itself until the job is answered: its reference count goes
    # up while the job is pending, and no second 16 MiB buffer is made (the array's memory is what
    # ZeroMQ sends).
    big = np.ones(4 << 20, np.float32)  # 16 MiB
    before = sys.getrefcount(big)
    with fleet.client(timeout=120) as c:
        future = c.submit("sleep", [], {"ms": 1})  # keep the I/O busy a moment
        job = c.submit("reduce_sum", [big])
        assert sys.getrefcount(big) > before, "the client copied the input instead of holding it"
        assert job.result()[0] == pytest.approx(4 << 20)
        future.result()
    import gc
    gc.collect()
    assert sys.getrefcount(big) == before, "the client kept a reference after the job was answered"


def test_non_contiguous_unaligned_and_foreign_byte_order_inputs_are_converted(client):
    base = np.arange(40, dtype=np.float32).reshape(5, 8)
    strided = base[:, ::2]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(client.run("passthrough", [strided])[0], strided)
    raw = np.zeros(4 * 10 + 1, np.uint8)[1:].view(np.float32)  # misaligned by one byte
    raw[:] = np.arange(10)
    np.testing.assert_array_equal(client.run("passthrough", [raw])[0], np.arange(10, dtype=np.float32))
    swapped = np.arange(6, dtype=">f4")
    out = client.run("passthrough", [swapped])[0]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.arange(6, dtype=np.float32))


def test_buffer_protocol_dlpack_and_lists_are_accepted(client):
    assert list(client.run("passthrough", [bytearray(b"\x01\x02\x03")])[0]) == [1, 2, 3]
    assert client.run("passthrough", [memoryview(np.arange(3, dtype=np.int32))])[0].dtype == np.int32

    class OnlyDlpack:
        def __init__(self, array):
            self.array = array

        def __dlpack__(self, stream=None):
            return self.array.__dlpack__()

        def __dlpack_device__(self):
            return self.array.__dlpack_device__()

    out = client.run("vector_add", [OnlyDlpack(np.ones(3, np.float32)), np.ones(3, np.float32)])[0]
    np.testing.assert_array_equal(out, [2, 2, 2])
    np.testing.assert_array_equal(client.run("passthrough", [[1.5, 2.5]])[0], [1.5, 2.5])


def test_outputs_support_dlpack(client):
    out = client.run("passthrough", [np.arange(4, dtype=np.int64)])[0]
    np.testing.assert_array_equal(np.from_dlpack(out), [0, 1, 2, 3])


def test_an_uncarried_dtype_is_a_type_error_that_names_the_carried_ones(client):
    with pytest.raises(TypeError, match="float32, float64, int32, int64 and uint8"):
        client.submit("passthrough", [np.zeros(3, np.int16)])
    with pytest.raises(TypeError):
        client.submit("passthrough", [np.zeros(3, np.complex64)])


def test_lists_from_several_threads_before_numpy_is_imported(fleet):
    # A fresh interpreter that has not imported numpy: the first submits of lists, from eight threads
    # at once, must not deadlock on the package's first use of numpy (they did, once).
    script = f"""
import sys, threading
import gpubridge
c = gpubridge.Client({fleet.frontend!r}, key_file={str(fleet.keys / 'team-a.key')!r},
                     broker_key_file={str(fleet.keys / 'broker.pub')!r}, timeout=10)
def send():
    for _ in range(3):
        assert list(c.run("vector_add", [[1.0], [2.0]])[0]) == [3.0]
threads = [threading.Thread(target=send) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
print("done")
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                         env=dict(os.environ))
    assert run.returncode == 0 and run.stdout.strip() == "done", run.stdout + run.stderr

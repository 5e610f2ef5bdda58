"""Every status is an exception class under gpubridge.Error, with code, message and retry_after;
the ones a client can meet are met here for real."""

import time

import numpy as np
import pytest

import gpubridge
from fleet import TENSOR_LIMIT, wait_until
from gpubridge import errors


def test_every_status_code_has_its_class():
    # The wire's codes (schemas/bridge.fbs, docs/protocol.md), OK aside.
    expected = ["INVALID_ARGUMENT", "MALFORMED_MESSAGE", "VERSION_MISMATCH", "UNKNOWN_KERNEL", "UNKNOWN_TENANT",
                "TOO_LARGE", "RESOURCE_EXHAUSTED", "QUEUE_FULL", "DEADLINE_EXCEEDED", "UNAVAILABLE", "WORKER_LOST",
                "INTERNAL", "NO_CAPABLE_WORKER", "CANCELLED", "PERMISSION_DENIED", "ACTOR_NOT_ACTIVE", "ABORTED",
                "UNAUTHENTICATED", "DATA_LOSS"]
    assert [cls.code for cls in sorted(errors.BY_CODE.values(), key=lambda c: c.value)] == expected
    for value, code in enumerate(expected, start=1):
        cls = errors.BY_CODE[code]
        assert cls.value == value and issubclass(cls, gpubridge.Error)
        assert getattr(gpubridge, cls.__name__) is cls
        e = errors.from_status(code, value, "what to fix", 0.25, None)
        assert type(e) is cls and e.code == code and e.message == "what to fix" and e.retry_after == 0.25
        assert str(e) == f"{code}: what to fix"
    unknown = errors.from_status("UNKNOWN(99)", 99, "new", 0, None)
    assert type(unknown) is gpubridge.Error and unknown.code == "UNKNOWN(99)"


def test_invalid_argument_names_the_input(client):
    with pytest.raises(gpubridge.InvalidArgument) as e:
        client.run("vector_add", [np.ones(3, np.float32), np.ones(4, np.float32)])
    assert "vector_add" in e.value.message
    assert e.value.result is not None and e.value.result.worker_id  # it reached a worker, which said so


def test_unknown_kernel(client):
    with pytest.raises(gpubridge.UnknownKernel, match="fft_3d"):
        client.run("fft_3d", [np.ones(3, np.float32)])


def test_deadline_exceeded(client):
    with pytest.raises(gpubridge.DeadlineExceeded):
        client.run("sleep", [], {"ms": 2000}, timeout=0.2)


def test_no_capable_worker_for_a_gpu_only_job_on_a_cpu_fleet(client):
    with pytest.raises(gpubridge.NoCapableWorker):
        client.run("vector_add", [np.ones(2, np.float32), np.ones(2, np.float32)], placement="require-gpu")


def test_a_bad_placement_is_a_value_error(client):
    with pytest.raises(ValueError, match="prefer-gpu"):
        client.submit("vector_add", [], placement="gpu please")


def test_permission_denied_for_another_tenants_name(fleet):
    with fleet.client("team-a") as c:
        with pytest.raises(gpubridge.PermissionDenied):
            c.run("sleep", [], {"ms": 1}, tenant="team-b")


def test_unauthenticated_for_a_key_no_tenant_has(fleet):
    with fleet.client("stranger", timeout=5.0) as c:
        with pytest.raises(gpubridge.Unauthenticated):
            c.run("sleep", [], {"ms": 1})


def test_resource_exhausted_carries_retry_after(fleet):
    # Tenant `tiny` may have one job in flight.
    with fleet.client("tiny") as c:
        first = c.submit("sleep", [], {"ms": 1500})
        time.sleep(0.2)
        with pytest.raises(gpubridge.ResourceExhausted) as e:
            c.run("sleep", [], {"ms": 1})
        assert e.value.retry_after > 0
        first.result()


def test_resource_exhausted_for_the_tenants_resident_bytes(fleet):
    with fleet.client("tiny") as c:
        with pytest.raises(gpubridge.ResourceExhausted, match="max_resident_bytes"):
            c.actor("too-big").put("w", np.zeros(8192, np.float32))


def test_cancelled_when_the_client_closes_with_jobs_pending(fleet):
    c = fleet.client()
    future = c.submit("sleep", [], {"ms": 3000})
    c.close()
    with pytest.raises(gpubridge.Cancelled, match="shutting down"):
        future.result(timeout=5)
    with pytest.raises(ValueError, match="closed"):
        c.submit("sleep", [], {"ms": 1})


def test_a_cancelled_future_stops_the_job_on_its_worker(fleet):
    # Tenant team-b has nothing else in flight here: its count is this job's.
    with fleet.client("team-b") as c, fleet.client("operator") as ops:
        future = c.submit("sleep", [], {"ms": 20000})
        assert wait_until(lambda: inflight(ops, "team-b") >= 1, timeout=20), ops.quotas("team-b")
        assert future.cancel() and future.cancelled()
        # The worker stops it and the tenant's quota comes back, long before the 20 s were up.
        assert wait_until(lambda: inflight(ops, "team-b") == 0, timeout=10), ops.quotas("team-b")


def inflight(ops, tenant):
    return ops.quotas(tenant)["tenants"][0]["inflight_jobs"]


def test_too_large_names_the_limit(client):
    with pytest.raises(gpubridge.TooLarge, match="max_tensor_bytes"):
        client.run("passthrough", [np.zeros((TENSOR_LIMIT // 4) + 1, np.float32)])

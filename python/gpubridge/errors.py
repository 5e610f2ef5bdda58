"""Every status the fleet can answer, as an exception class under :class:`Error`.

docs/protocol.md says what each code means and what to do about it; the message says it for the
case at hand.
"""

from __future__ import annotations

from typing import Any, Optional


class Error(Exception):
    """A job or request the fleet did not complete.

    Attributes:
        code: the status name, e.g. ``"RESOURCE_EXHAUSTED"``.
        value: its number on the wire.
        message: what happened and what to fix.
        retry_after: seconds to wait before sending again (RESOURCE_EXHAUSTED, QUEUE_FULL), else 0.
        result: the :class:`gpubridge.Result` of a failed job (``worker_id``, ``fallback_reason``,
            timings), or None for a request that is not a job.
    """

    code = "UNKNOWN"
    value = -1

    def __init__(self, message: str, *, code: Optional[str] = None, value: Optional[int] = None,
                 retry_after: float = 0.0, result: Any = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if value is not None:
            self.value = value
        self.message = message
        self.retry_after = retry_after
        self.result = result

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidArgument(Error):
    code, value = "INVALID_ARGUMENT", 1


class MalformedMessage(Error):
    code, value = "MALFORMED_MESSAGE", 2


class VersionMismatch(Error):
    code, value = "VERSION_MISMATCH", 3


class UnknownKernel(Error):
    code, value = "UNKNOWN_KERNEL", 4


class UnknownTenant(Error):
    code, value = "UNKNOWN_TENANT", 5


class TooLarge(Error):
    code, value = "TOO_LARGE", 6


class ResourceExhausted(Error):
    code, value = "RESOURCE_EXHAUSTED", 7


class QueueFull(Error):
    code, value = "QUEUE_FULL", 8


class DeadlineExceeded(Error):
    code, value = "DEADLINE_EXCEEDED", 9


class Unavailable(Error):
    code, value = "UNAVAILABLE", 10


class WorkerLost(Error):
    code, value = "WORKER_LOST", 11


class Internal(Error):
    code, value = "INTERNAL", 12


class NoCapableWorker(Error):
    code, value = "NO_CAPABLE_WORKER", 13


class Cancelled(Error):
    code, value = "CANCELLED", 14


class PermissionDenied(Error):
    code, value = "PERMISSION_DENIED", 15


class ActorNotActive(Error):
    code, value = "ACTOR_NOT_ACTIVE", 16


class Aborted(Error):
    code, value = "ABORTED", 17


class Unauthenticated(Error):
    code, value = "UNAUTHENTICATED", 18


class DataLoss(Error):
    """An actor's acknowledged state is gone from Redis; ``Actor.reset()`` starts it again from empty."""
    code, value = "DATA_LOSS", 19


BY_CODE = {cls.code: cls for cls in Error.__subclasses__()}


def from_status(code: str, value: int, message: str, retry_after: float, result: Any) -> Error:
    """The exception for a status (called by the native module)."""
    cls = BY_CODE.get(code, Error)
    return cls(message, code=code, value=value, retry_after=retry_after, result=result)

"""gpubridge: run kernels on a GpuBridge fleet from Python.

    import numpy as np, gpubridge
    with gpubridge.Client("tcp://127.0.0.1:5555", key_file="team-a.key", broker_key_file="broker.pub") as client:
        result = client.run("matmul", [np.ones((64, 32), np.float32), np.ones((32, 16), np.float32)])
        product = result[0]        # a numpy array over the received bytes, no copy

One implementation of the protocol, the C++ client (``libgpubridge``), with a Python face: inputs
go out without a copy, outputs come back without one, and the GIL is released while the client
encodes and while it waits. README "Python client" and docs/protocol.md say the rest.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import threading
import weakref
from typing import Any, AsyncIterator, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

from . import _gpubridge
from .errors import (Aborted, ActorNotActive, Cancelled, DataLoss, DeadlineExceeded, Error, Internal, InvalidArgument,
                     MalformedMessage, NoCapableWorker, PermissionDenied, QueueFull, ResourceExhausted, TooLarge,
                     Unauthenticated, Unavailable, UnknownKernel, UnknownTenant, VersionMismatch, WorkerLost,
                     from_status)

Result = _gpubridge.Result

__all__ = [
    "Client", "JobFuture", "Pipeline", "Actor", "Resident", "Stream", "Result", "Error",
    "InvalidArgument", "MalformedMessage", "VersionMismatch", "UnknownKernel", "UnknownTenant", "TooLarge",
    "ResourceExhausted", "QueueFull", "DeadlineExceeded", "Unavailable", "WorkerLost", "Internal",
    "NoCapableWorker", "Cancelled", "PermissionDenied", "ActorNotActive", "Aborted", "Unauthenticated",
    "DataLoss",
]

_gpubridge._set_error_factory(from_status)

Params = Optional[Mapping[str, float]]


class JobFuture(concurrent.futures.Future):
    """A job's future: ``result()`` returns a :class:`Result` or raises the job's :class:`Error`.
    ``cancel()`` also stops the job in the fleet (a waiting job never runs, a running one is stopped
    on its worker)."""

    job_id: int = 0
    _client: Optional["_gpubridge._Client"] = None

    def result(self, timeout: Optional[float] = None) -> Result:
        self._refuse_deadlock()
        if not self.done():
            _send_held(self._client)
        return super().result(timeout)

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        self._refuse_deadlock()
        if not self.done():
            _send_held(self._client)
        return super().exception(timeout)

    def _refuse_deadlock(self) -> None:
        # Done-callbacks run on the client's delivery thread, the one that completes futures: waiting
        # there for another job of the same client would wait for ever.
        if not self.done() and self._client is not None and self._client.on_delivery_thread():
            raise RuntimeError("gpubridge: waiting for a job inside a done-callback of the same Client would never "
                               "return (the callback runs on the thread that delivers results); chain with "
                               "add_done_callback, or wait from another thread or from asyncio")

    def cancel(self) -> bool:
        cancelled = super().cancel()
        if cancelled and self._client is not None and not self._client.closed():
            self._client.cancel(self.job_id)
        return cancelled


# This thread's open Client.batched_sends() blocks, as [native client, batch] entries (any client).
_holding = threading.local()


def _send_held(native: Optional["_gpubridge._Client"]) -> None:
    """Before this thread waits for a job: hands over what it holds for that client (batched_sends)."""
    held = getattr(_holding, "batches", None)
    if held and native is not None:
        for client, batch in reversed(held):
            if client is native:
                batch.send_now()
                return


class Pipeline:
    """Kernels run one after another in one job on one worker; intermediates stay on the device.

        Pipeline().then("resize", height=64, width=64).then("blur", sigma=1.5)

    Pass it where a kernel name goes: ``client.run(pipeline, [image])``.
    """

    def __init__(self) -> None:
        self.steps: List[tuple] = []

    def then(self, kernel: str, params: Params = None, **more: float) -> "Pipeline":
        merged = dict(params or {})
        merged.update(more)
        self.steps.append((kernel, {k: float(v) for k, v in merged.items()}))
        return self

    def __repr__(self) -> str:
        return "Pipeline(" + " -> ".join(k for k, _ in self.steps) + ")"


class Resident:
    """In an actor call, the actor's resident tensor ``name`` in place of an array sent with the call."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Resident({self.name!r})"


_live_clients: "weakref.WeakSet[Client]" = weakref.WeakSet()


class Client:
    """A connection to one broker. Every method may be called from any thread, and from asyncio.

    Args:
        broker: the broker's client endpoint, or several brokers of one fleet separated by commas
            (``"tcp://a:5555,tcp://b:5555"``): the client starts at a random one and moves to the
            next when its broker is silent for two ``broker_check`` periods while requests wait.
        tenant: the tenant jobs run for; empty: the one the broker enrolled this key for.
        key_file, broker_key_file: CURVE keys (``bridgectl keygen``); empty: GPUBRIDGE_KEY_FILE and
            GPUBRIDGE_BROKER_KEY_FILE, and neither set means no CURVE (a broker with ``security: none``).
        timeout: seconds a job or request may take, unless it says otherwise.
        retry_attempts, retry_initial_backoff, retry_max_backoff: re-sending jobs refused for a
            passing reason (RESOURCE_EXHAUSTED, QUEUE_FULL, UNAVAILABLE); 1 attempt: no retry.
        broker_check: seconds of broker silence, with jobs pending, before the client asks whether
            the broker restarted (and re-sends what it lost); 0 turns it off.
    """

    def __init__(self, broker: str = "tcp://127.0.0.1:5555", tenant: str = "", *, key_file: str = "",
                 broker_key_file: str = "", timeout: float = 30.0, retry_attempts: int = 1,
                 retry_initial_backoff: float = 0.02, retry_max_backoff: float = 2.0,
                 broker_check: float = 1.0) -> None:
        self._native = _gpubridge._Client(broker, tenant, key_file, broker_key_file, timeout, retry_attempts,
                                          retry_initial_backoff, retry_max_backoff, broker_check)
        self.broker = broker
        self._streams: "weakref.WeakSet[Stream]" = weakref.WeakSet()
        _live_clients.add(self)

    # ---- jobs -----------------------------------------------------------------------------------

    def submit(self, kernel: Union[str, Pipeline], inputs: Sequence[Any] = (), params: Params = None, *,
               tenant: str = "", priority: int = 0, placement: str = "any",
               timeout: Optional[float] = None) -> JobFuture:
        """Sends a job; the future completes with its :class:`Result` or its :class:`Error`.

        ``kernel`` is a catalog name (docs/kernels.md) or a :class:`Pipeline`. Inputs are numpy
        arrays, objects with ``__dlpack__`` or the buffer protocol, or sequences of numbers; they are
        sent without a copy when C-contiguous and aligned, and must not be changed until the job is
        answered. ``placement``: any, prefer-gpu, require-gpu or cpu-only.
        """
        if kernel.__class__ is str and not tenant and not priority and placement == "any" and timeout is None:
            future = JobFuture()  # the common case, kept short: it runs once per job
            future._client = self._native
            future.job_id = self._native.submit(kernel, inputs, params, future)
            return future
        return self._submit(kernel, inputs, params, tenant=tenant, priority=priority, placement=placement,
                            timeout=timeout)

    def run(self, kernel: Union[str, Pipeline], inputs: Sequence[Any] = (), params: Params = None,
            **options: Any) -> Result:
        """Sends a job and waits for it (without holding the GIL); raises its :class:`Error`."""
        return self.submit(kernel, inputs, params, **options).result()  # sends what is held first

    def submit_async(self, kernel: Union[str, Pipeline], inputs: Sequence[Any] = (), params: Params = None,
                     **options: Any) -> "asyncio.Future[Result]":
        """Like :meth:`submit`, as an asyncio future of the running loop. Never held by
        :meth:`batched_sends`: coroutines share their thread, and one awaiting a job held by another's
        block would wait for ever."""
        future = asyncio.wrap_future(self.submit(kernel, inputs, params, **options))
        _send_held(self._native)
        return future

    async def run_async(self, kernel: Union[str, Pipeline], inputs: Sequence[Any] = (), params: Params = None,
                        **options: Any) -> Result:
        """``await``-able :meth:`run`."""
        return await self.submit_async(kernel, inputs, params, **options)

    def submit_batch(self, kernel: str, inputs: Iterable[Sequence[Any]], params: Params = None,
                     **options: Any) -> List[JobFuture]:
        """One job per element of ``inputs``, all running ``kernel`` with ``params``; futures in the same
        order. Workers run compatible small jobs waiting together as one launch (dynamic batching)."""
        with self.batched_sends():
            return [self.submit(kernel, item, params, **options) for item in inputs]

    @contextlib.contextmanager
    def batched_sends(self) -> Iterator["Client"]:
        """The jobs this thread submits inside the ``with`` block are handed to the client's I/O thread
        together when it ends: one wake-up of that thread instead of one per job, which counts when
        jobs are small and many. Other threads' jobs are not held, nor are ``submit_async``,
        ``run_async`` and stream writes. Held jobs may leave earlier (another thread's job wakes the
        I/O thread, which takes them all), never later than the block's end, and nothing answers them
        until they leave: keep the block short. Waiting for a job on this thread (``run``,
        ``result()``, ``exception()``, actor calls, ``status``) sends what is held first; only an
        ``await`` of a held job's future (``asyncio.wrap_future(client.submit(...))``) would wait for
        ever. Jobs submitted from done-callbacks are sent together this way after each batch of
        results without asking. Nested blocks are fine, and a block may end on another thread."""
        batch = _gpubridge._SendBatch(self._native)
        entry = [self._native, batch]
        batches = _holding.__dict__.setdefault("batches", [])  # the entering thread's, wherever it ends
        batch.enter()
        batches.append(entry)
        try:
            yield self
        finally:
            batches.remove(entry)
            batch.exit()

    def actor(self, actor_id: str, tenant: str = "") -> "Actor":
        """A handle on actor ``actor_id`` (of ``tenant``, default this client's)."""
        return Actor(self, actor_id, tenant)

    def stream(self, kernel: str, params: Params = None, *, window: int = 16, block_when_full: bool = True,
               tenant: str = "", placement: str = "any", timeout: Optional[float] = None) -> "Stream":
        """Opens a stream of items through ``kernel``; see :class:`Stream`."""
        return Stream(self, kernel, params, window=window, block_when_full=block_when_full, tenant=tenant,
                      placement=placement, timeout=timeout)

    def cancel(self, job: Union[JobFuture, int]) -> None:
        """Stops a job (see :meth:`JobFuture.cancel`)."""
        if isinstance(job, JobFuture):
            job.cancel()
        else:
            self._native.cancel(int(job))

    # ---- reports --------------------------------------------------------------------------------

    def status(self) -> Dict[str, Any]:
        """The broker's view of the fleet (``bridgectl status --json``)."""
        return self._native.status()

    def quotas(self, tenant: str = "") -> Dict[str, Any]:
        """Quotas and live usage of ``tenant`` (every tenant for an operator key, when empty)."""
        return self._native.quotas(tenant)

    def actor_info(self, actor_id: str, tenant: str = "") -> Dict[str, Any]:
        """An actor's version, placement and resident tensors."""
        return self._native.actor_info(tenant or self._native.tenant(), actor_id)

    def actor_reset(self, actor_id: str, tenant: str = "") -> Dict[str, Any]:
        """Drops an actor's resident tensors and any mark that Redis lost its state (``DataLoss``); its
        next call starts from empty, at a newer version. ``Aborted`` while it has calls in flight."""
        return self._native.actor_reset(tenant or self._native.tenant(), actor_id)

    @property
    def resent_after_restart(self) -> int:
        """Jobs sent again because the broker restarted while they were pending."""
        return self._native.resent_after_restart()

    # ---- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        """Answers every pending job CANCELLED (its future raises :class:`Cancelled`), tells the broker to
        stop them, closes this client's streams and disconnects. Later calls raise ValueError."""
        for stream in list(self._streams):
            stream.close()  # wakes a writer waiting for room in the window
        self._native.close()

    @property
    def closed(self) -> bool:
        return self._native.closed()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _submit(self, kernel: Union[str, Pipeline], inputs: Sequence[Any], params: Params, *, tenant: str = "",
                priority: int = 0, placement: str = "any", timeout: Optional[float] = None, actor_id: str = "",
                resident_inputs: Sequence[str] = (), keep_outputs: Sequence[str] = ()) -> JobFuture:
        stages: List[tuple] = []
        if isinstance(kernel, Pipeline):
            if not kernel.steps:
                raise ValueError("an empty Pipeline: add a kernel with then()")
            (kernel, first_params), stages = kernel.steps[0], kernel.steps[1:]
            params = {**first_params, **(params or {})}
        future = JobFuture()
        future._client = self._native
        future.job_id = self._native.submit_with(kernel, inputs, params, future, tenant, actor_id, priority,
                                                 placement, timeout, stages, list(resident_inputs),
                                                 list(keep_outputs))
        return future


class Actor:
    """One actor: calls run one at a time, in order, on the worker holding its state; what a call keeps
    is written through to Redis before the call is answered (docs/architecture.md, "Actors")."""

    def __init__(self, client: Client, actor_id: str, tenant: str = "") -> None:
        self.client = client
        self.actor_id = actor_id
        self.tenant = tenant

    def submit(self, kernel: str, args: Sequence[Any] = (), params: Params = None, *, keep: Sequence[str] = (),
               placement: str = "any", timeout: Optional[float] = None) -> JobFuture:
        """Calls ``kernel`` on ``args`` (arrays, or :class:`Resident` names of the actor's tensors).
        Output i is kept in the actor under ``keep[i]`` (and not returned); "" or past the end: returned."""
        inputs = [None if isinstance(a, Resident) else a for a in args]
        resident = [a.name if isinstance(a, Resident) else "" for a in args]
        if not any(resident):
            resident = []
        return self.client._submit(kernel, inputs, params, tenant=self.tenant, placement=placement, timeout=timeout,
                                   actor_id=self.actor_id, resident_inputs=resident, keep_outputs=keep)

    def call(self, kernel: str, args: Sequence[Any] = (), params: Params = None, **options: Any) -> Result:
        """:meth:`submit`, waiting for the result."""
        return self.submit(kernel, args, params, **options).result()

    async def call_async(self, kernel: str, args: Sequence[Any] = (), params: Params = None, **options: Any) -> Result:
        return await asyncio.wrap_future(self.submit(kernel, args, params, **options))

    def put(self, name: str, array: Any) -> Result:
        """Keeps ``array`` in the actor under ``name`` (counts against the tenant's max_resident_bytes)."""
        return self.call("passthrough", [array], keep=[name])

    def get(self, name: str) -> Any:
        """A copy of the resident tensor ``name``, as a numpy array."""
        return self.call("passthrough", [Resident(name)])[0]

    def info(self) -> Dict[str, Any]:
        """Version, placement and resident tensors."""
        return self.client.actor_info(self.actor_id, self.tenant)

    def reset(self) -> Dict[str, Any]:
        """Drops the resident tensors and any loss mark (after ``DataLoss``); returns the actor after."""
        return self.client.actor_reset(self.actor_id, self.tenant)


class Stream:
    """Items through one kernel, results back in write order, at most ``window`` unread at a time.

    One thread writes and one reads (or ``async for`` in asyncio). Iterating reads until the stream is
    closed and every result read; a failed item raises its :class:`Error` in its place.

        with client.stream("vector_add", window=8) as s:
            for a, b in pairs: s.write(a, b)
            s.close()
            sums = [r[0] for r in s]
    """

    def __init__(self, client: Client, kernel: str, params: Params = None, *, window: int = 16,
                 block_when_full: bool = True, tenant: str = "", placement: str = "any",
                 timeout: Optional[float] = None) -> None:
        self._native = _gpubridge._Stream(client._native, kernel, params, window, block_when_full, tenant,
                                          placement, timeout)
        client._streams.add(self)

    def write(self, *inputs: Any) -> None:
        """Sends one item; waits while the window is full (or raises ResourceExhausted if
        ``block_when_full`` is False). Never held by :meth:`Client.batched_sends`: its reader waits
        for it."""
        self._native.write(list(inputs))

    def read(self) -> Optional[Result]:
        """The next result in write order, waiting for it; None once closed and read out."""
        return self._native.read()

    def close(self) -> None:
        """No more writes; reads return what is left, then None."""
        self._native.close()

    @property
    def outstanding(self) -> int:
        """Items written and not yet read."""
        return self._native.outstanding()

    def __iter__(self) -> Iterator[Result]:
        while (result := self.read()) is not None:
            yield result

    async def __aiter__(self) -> AsyncIterator[Result]:
        while (result := await asyncio.to_thread(self.read)) is not None:
            yield result

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _abandon_clients_after_fork() -> None:
    # A forked child has none of the parent's threads: its clients cannot work, nor be closed.
    for client in list(_live_clients):
        client._native.abandon_after_fork()


os.register_at_fork(after_in_child=_abandon_clients_after_fork)


@atexit.register
def _close_clients() -> None:
    # Before the interpreter goes: each client's threads deliver what is pending, while Python can run.
    for client in list(_live_clients):
        client.close()

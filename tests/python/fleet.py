"""A real fleet for the Python tests: redis-server, bridge-broker and CPU workers on free 127.0.0.1
ports, secured with CURVE keys from `bridgectl keygen`, as a real fleet is (docs/security.md).

Programs come from GPUBRIDGE_BUILD_DIR (ctest sets it; default build/)."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Dict, List

import gpubridge

SOURCE = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("GPUBRIDGE_BUILD_DIR", SOURCE / "build"))
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"

TENANTS = ["team-a", "team-b", "tiny"]
TENSOR_LIMIT = 128 << 20  # the fleet's max_tensor_bytes: a 64 MiB tensor passes, 128 MiB + 4 is TOO_LARGE


def free_port() -> int:
    """A port the kernel just gave out and took back: free unless another process takes it first."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class Fleet:
    """Start with Fleet(...).start(); stop() kills everything and removes the directory."""

    def __init__(self, workers: int = 2, slots: int = 4, broker_yaml: str = "", worker_yaml: str = "") -> None:
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="gpubridge-pytest-"))
        self.keys = self.dir / "keys"
        self.keys.mkdir()
        self.workers = workers
        self.slots = slots
        self.broker_yaml = broker_yaml
        self.worker_yaml = worker_yaml
        self.processes: Dict[str, subprocess.Popen] = {}
        self.redis_port = free_port()
        self.frontend = f"tcp://127.0.0.1:{free_port()}"
        self.backend = f"tcp://127.0.0.1:{free_port()}"

    # ---- set-up -------------------------------------------------------------------------------

    def redis(self, *args: str) -> bytes:
        """One command to the fleet's Redis (RESP by hand: redis-cli may not be installed); its reply's
        first line, without the type byte."""
        request = f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.redis_port), timeout=5) as s:
            s.sendall(request)
            return s.makefile("rb").readline().rstrip(b"\r\n")[1:]

    def keygen(self, name: str) -> str:
        subprocess.run([str(BUILD / "bridgectl" / "bridgectl"), "keygen", str(self.keys / name)], check=True,
                       stdout=subprocess.DEVNULL)
        text = (self.keys / f"{name}.pub").read_text()
        return re.search(r'public-key = "(.*)"', text).group(1)

    def start(self) -> "Fleet":
        public = {name: self.keygen(name) for name in ["broker", "worker", "operator", "stranger", *TENANTS]}
        (self.dir / "workers.yaml").write_text(f'keys:\n  - "{public["worker"]}"\n')
        tenants = "tenants:\n"
        tenants += f'  team-a:\n    keys: ["{public["team-a"]}"]\n'
        tenants += f'  team-b:\n    keys: ["{public["team-b"]}"]\n'
        # `tiny`: a tenant with one job in flight and small tensors, to meet its limits.
        tenants += f'  tiny:\n    keys: ["{public["tiny"]}"]\n    max_inflight_jobs: 1\n    max_resident_bytes: 4096\n'
        tenants += f'operator_keys: ["{public["operator"]}"]\n'
        (self.dir / "tenants.yaml").write_text(tenants)
        (self.dir / "broker.yaml").write_text(
            "heartbeat_ms: 200\nliveness: 5\nlog_level: debug\ntenants_file: tenants.yaml\n"
            "security: curve\nsecret_key_file: keys/broker.key\nworkers_file: workers.yaml\n"
            f"limits:\n  max_tensor_bytes: {TENSOR_LIMIT}\n" + self.broker_yaml)
        (self.dir / "worker.yaml").write_text(
            "heartbeat_ms: 200\nliveness: 5\nthreads: 2\nlog_level: debug\nkey_file: keys/worker.key\n"
            "broker_key_file: keys/broker.pub\n" + self.worker_yaml)
        self._start("redis", [REDIS, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(self.dir)])
        self.start_broker()
        for i in range(self.workers):
            self.start_worker(f"worker-{i}")
        if not wait_until(lambda: self._ready(self.workers), timeout=20):
            logs = self.logs()
            self.stop()
            raise RuntimeError("the fleet did not come up:\n" + logs)
        return self

    def start_broker(self) -> None:
        self._start("broker", [str(BUILD / "broker" / "bridge-broker"), "--config", str(self.dir / "broker.yaml"),
                               "--frontend", self.frontend, "--backend", self.backend,
                               "--redis", f"redis://127.0.0.1:{self.redis_port}/0"])

    def start_worker(self, name: str) -> None:
        self._start(name, [str(BUILD / "worker" / "bridge-worker"), "--config", str(self.dir / "worker.yaml"),
                           "--broker", self.backend, "--id", name, "--slots", str(self.slots)])

    def _start(self, name: str, argv: List[str]) -> None:
        log = open(self.dir / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(argv, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT)

    def _ready(self, workers: int) -> bool:
        try:
            with self.client("operator", timeout=1.0) as ops:
                status = ops.status()
            return status["redis_connected"] and len(status["workers"]) == workers
        except gpubridge.Error:
            return False

    # ---- use ----------------------------------------------------------------------------------

    def client(self, key: str = "team-a", **options) -> gpubridge.Client:
        """A client with `key`'s key (a tenant's, "operator" or "stranger", which is enrolled nowhere)."""
        return gpubridge.Client(self.frontend, key_file=str(self.keys / f"{key}.key"),
                                broker_key_file=str(self.keys / "broker.pub"), **options)

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def restart_broker(self) -> None:
        """kill -9, then the same broker on the same ports, with Redis as it was."""
        self.kill("broker")
        self.start_broker()

    def logs(self) -> str:
        return "\n".join(f"==== {p.name}\n" + p.read_text(errors="replace")[-4000:]
                         for p in sorted(self.dir.glob("*.log")))

    def stop(self) -> None:
        for name in list(self.processes):
            self.kill(name)
        shutil.rmtree(self.dir, ignore_errors=True)

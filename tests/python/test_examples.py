"""The examples in examples/python/ run against a real fleet and check their own answers."""

import os
import subprocess
import sys

import pytest

from fleet import SOURCE

EXAMPLES = sorted((SOURCE / "examples" / "python").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example(fleet, example):
    keys = fleet.keys
    run = subprocess.run([sys.executable, str(example), "--broker", fleet.frontend,
                          "--key-file", str(keys / "team-b.key"), "--broker-key-file", str(keys / "broker.pub")],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip(), "the example printed nothing"


def test_every_example_is_collected():
    assert {e.name for e in EXAMPLES} >= {"matmul.py", "image_pipeline.py", "actor_weights.py", "asyncio_fanout.py"}

import pytest

from fleet import Fleet


@pytest.fixture(scope="session")
def fleet():
    """One fleet for the tests that only send jobs (2 CPU workers x 4 slots)."""
    f = Fleet().start()
    yield f
    f.stop()


@pytest.fixture
def client(fleet):
    with fleet.client("team-a") as c:
        yield c

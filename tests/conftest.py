"""Suite-wide settings: autolog's own errors raise (AUTOLOG_TESTING=1), MLflow stays local,
and every test starts and ends with autolog disabled and nothing remembered."""

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("AUTOLOG_TESTING", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
# No delivery agent for the test process and the processes it starts: an agent outlives
# its process and would go on retrying the outages tests simulate. Tests of the agent turn
# it on (AUTOLOG_AGENT=1) for the processes they start, and stop it by its pid.
os.environ.setdefault("AUTOLOG_AGENT", "0")


@pytest.fixture(autouse=True)
def _autolog_off() -> Iterator[None]:
    import autolog
    from autolog import safety, session

    safety.reset_reported()
    yield
    autolog.disable()
    session.instance_runs.clear()
    safety.set_silent(False)

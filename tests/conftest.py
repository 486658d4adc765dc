"""Every test session: the project importable, and SIGTERM or SIGHUP (a cancelled CI job,
`timeout`, a closed terminal) unwinding the session as Ctrl-C does, so every fixture's teardown
runs: the integration tests' compose projects and registries, the test cluster and its pods.
Without this, Python's default for SIGTERM ends the process on the spot and leaves all of it."""

import signal
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

TEARDOWN_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def pytest_configure(config) -> None:
    for signum in TEARDOWN_SIGNALS:
        signal.signal(signum, _interrupt)

import pytest

from sutra_deploy.core.errors import TimedOut
from sutra_deploy.tools.waiting import Clock, wait_until


class FakeTime:
    """A clock that moves only when slept on, so the loop is tested without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> Clock:
        return Clock(now=lambda: self.now, sleep=self.sleep)


def test_returns_the_first_truthy_result():
    answers = iter([None, False, "ready"])
    fake = FakeTime()
    assert wait_until(lambda: next(answers), timeout=10, interval=1, clock=fake.clock()) == "ready"
    assert fake.sleeps == [1, 1]


def test_times_out_without_oversleeping_the_deadline():
    fake = FakeTime()
    with pytest.raises(TimedOut, match=r"gave up waiting for storage after 2\.5s"):
        wait_until(lambda: None, timeout=2.5, interval=1, what="storage", clock=fake.clock())
    assert fake.sleeps == [1, 1, 0.5]
    assert fake.now == 2.5

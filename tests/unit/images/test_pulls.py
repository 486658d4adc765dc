import json

from sutra_deploy.images.pulls import RETRY_AFTER_SECONDS, PullMemory


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_failed_pull_is_held_back_for_an_hour_across_runs_and_a_success_forgets_it(tmp_path):
    path = tmp_path / "failed-pulls.json"
    clock = Clock(1_000_000.0)
    memory = PullMemory(path, clock)
    assert memory.retry_at("python:3.11-slim") is None
    memory.record("python:3.11-slim", pulled=False)
    # The next run on this machine reads it back.
    clock.now += 60
    again = PullMemory(path, clock)
    assert again.retry_at("python:3.11-slim") == 1_000_000.0 + RETRY_AFTER_SECONDS
    assert again.retry_at("debian:bookworm-slim") is None  # only what failed
    clock.now = 1_000_000.0 + RETRY_AFTER_SECONDS
    assert again.retry_at("python:3.11-slim") is None  # an hour on: asked again
    clock.now = 999_000.0
    assert again.retry_at("python:3.11-slim") is None  # a clock set back never holds it for longer
    again.record("python:3.11-slim", pulled=True)
    assert json.loads(path.read_text()) == {}


def test_a_damaged_or_unwritable_memory_costs_only_a_try(tmp_path):
    broken = tmp_path / "failed-pulls.json"
    for text in ("{not json", '["a list"]', '{"python:3.11-slim": "yesterday"}'):
        broken.write_text(text)
        assert PullMemory(broken).retry_at("python:3.11-slim") is None
    blocked = tmp_path / "a-file" / "failed-pulls.json"
    (tmp_path / "a-file").write_text("")  # its folder is a file: nothing can be written there
    memory = PullMemory(blocked)
    memory.record("python:3.11-slim", pulled=False)  # no error
    assert memory.retry_at("python:3.11-slim") is not None  # still held back for this run

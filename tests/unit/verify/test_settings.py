from dataclasses import FrozenInstanceError

import pytest

from sutra_deploy.core.errors import SutraError
from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.k8s.quantities import memory_bytes
from sutra_deploy.verify.settings import VerifySettings

VERIFY = DEFAULTS["sutra"]["verify"]


def test_the_defaults_are_the_edges_sutra_verify():
    settings = VerifySettings.from_settings()
    assert settings == VerifySettings.from_settings(VERIFY)
    # Numbers are text in the defaults, as Invoke passes INVOKE_SUTRA_* values; read as numbers.
    assert (settings.requests, settings.concurrency) == (int(VERIFY["requests"]), int(VERIFY["concurrency"]))
    for key in ("pull_seconds", "startup_seconds", "scale_up_seconds", "hpa_sync_seconds"):
        assert getattr(settings, key) == float(VERIFY[key])
    assert settings.memory_targets == {name: memory_bytes(v) for name, v in VERIFY["memory_targets"].items()}
    assert settings.cpu_utilization == tuple(VERIFY["cpu_utilization"])
    assert (settings.cpu_gate, settings.limits_from) == (VERIFY["cpu_gate"], VERIFY["limits_from"])
    with pytest.raises(FrozenInstanceError):
        settings.cpu_gate = True  # type: ignore[misc]


def test_keys_not_set_keep_their_defaults_and_flags_beat_settings():
    settings = VerifySettings.from_settings({"startup_seconds": 12, "cpu_gate": True}, requests="40")
    assert (settings.startup_seconds, settings.cpu_gate, settings.requests) == (12, True, 40)
    assert settings.concurrency == int(VERIFY["concurrency"])
    assert settings.scale_up_seconds == float(VERIFY["scale_up_seconds"])


def test_null_memory_targets_leave_only_the_limits():
    assert VerifySettings.from_settings({"memory_targets": None}).memory_targets == {}


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"requests": 0}, "sutra.verify.requests must be a positive whole number"),
        ({"concurrency": "many"}, "sutra.verify.concurrency must be a positive whole number"),
        ({"pull_seconds": "soon"}, "sutra.verify.pull_seconds must be a positive number"),
        ({"startup_seconds": -1}, "sutra.verify.startup_seconds must be a positive number"),
        ({"scale_up_seconds": None}, "sutra.verify.scale_up_seconds must be a positive number"),
        ({"hpa_sync_seconds": True}, "sutra.verify.hpa_sync_seconds must be a positive number"),
        ({"memory_targets": {"sutra-api": "lots"}}, "sutra.verify.memory_targets.sutra-api must be"),
        ({"memory_targets": {"sutra-api": "0Mi"}}, "sutra.verify.memory_targets.sutra-api must be"),
        ({"memory_targets": "512Mi"}, "sutra.verify.memory_targets must map service names"),
        ({"cpu_utilization": [80, 50]}, "sutra.verify.cpu_utilization must be two percentages"),
        ({"cpu_utilization": 70}, "sutra.verify.cpu_utilization must be two percentages"),
        ({"cpu_utilization": [50, "x"]}, "sutra.verify.cpu_utilization must be a positive number"),
        ({"cpu_gate": "yes"}, "sutra.verify.cpu_gate must be true or false"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_key(raw, named):
    with pytest.raises(SutraError) as caught:
        VerifySettings.from_settings(raw)
    message = str(caught.value)
    assert message.startswith(named) and "\n" not in message
    assert caught.value.exit_code == 2


def test_a_bad_flag_is_named_as_the_flag():
    with pytest.raises(SutraError, match=r"^--concurrency must be a positive whole number, got '0'$"):
        VerifySettings.from_settings(VERIFY, concurrency="0")

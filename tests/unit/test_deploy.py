import sys
from pathlib import Path

import pytest

from sutra_deploy.deploy import NotConfirmed, confirm, pushed_digests, service_ports
from sutra_deploy.k8s import Environment
from sutra_deploy.registry import Pushed

PRODUCTION = Environment("production", Path("k8s/overlays/production"), "prod", "r.io/x", None, True, 600)
STAGING = Environment("staging", Path("k8s/overlays/staging"), "stage", "r.io/x", None, False, 300)


class Terminal:
    def isatty(self) -> bool:
        return True


def test_only_environments_marked_confirm_ask():
    asked = []
    confirm(STAGING, yes=False, dry=False, ask=asked.append)
    confirm(PRODUCTION, yes=True, dry=False, ask=asked.append)
    confirm(PRODUCTION, yes=False, dry=True, ask=asked.append)
    assert asked == []


def test_production_wants_its_name_typed_at_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stdin", Terminal())
    confirm(PRODUCTION, yes=False, dry=False, ask=lambda prompt: "production")
    with pytest.raises(NotConfirmed, match="deploy to production not confirmed"):
        confirm(PRODUCTION, yes=False, dry=False, ask=lambda prompt: "y")


def test_digests_of_the_versioned_tags_only():
    digest = "sha256:" + "a" * 64
    pushed = [
        Pushed("sutra-api", "r.io/x/sutra-api:v2", digest),
        Pushed("sutra-api", "r.io/x/sutra-api:latest", "sha256:" + "b" * 64),
        Pushed("sutra-client", "r.io/x/sutra-client:v2", "(dry run)"),
    ]
    assert pushed_digests(pushed, "v2") == {"sutra-api": digest}


def test_service_ports_come_from_the_rendered_services():
    objects = [
        {"kind": "Service", "metadata": {"name": "sutra-client"}, "spec": {"ports": [{"port": 80}]}},
        {"kind": "Deployment", "metadata": {"name": "sutra-client"}, "spec": {}},
    ]
    assert service_ports(objects) == {"sutra-client": 80}

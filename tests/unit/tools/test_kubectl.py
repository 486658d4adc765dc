"""The kubectl wrapper: the exact command lines, what a dry run prints, and port-forwards run
in the background (against the recording stand-in, which talks to no cluster: what is checked
is the command line itself; test_kubectl_binary.py has the real kubectl accept each one, and
tests/cluster/ runs them against a real server)."""

from __future__ import annotations

import logging

import pytest

from sutra_deploy.core.errors import WrongContext
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.kubectl import Kubectl, server_gone
from sutra_deploy.tools.waiting import wait_until

from ...standin.recording import STANDIN, recording_cluster


@pytest.fixture
def cluster(tmp_path):
    return recording_cluster(tmp_path)


@pytest.fixture
def kubectl(cluster):
    return Kubectl(Commands(env=cluster.env), str(STANDIN))


def test_every_cluster_call_is_printed_and_not_run_when_dry(capsys, cluster):
    commands = Commands(dry=True, env=cluster.env)
    kubectl = Kubectl(commands, str(STANDIN))
    # The kubeconfig is read, dry too: the context check is the real run's.
    assert kubectl.current_context() == "sutra-staging"
    kubectl.apply("kind: Namespace\n", "namespace (1 objects)")
    kubectl.rollout_status("sutra-api", "ns", 300)
    kubectl.rollout_undo("sutra-api", "ns", to_revision=3)
    kubectl.rollout_undo("sutra-api", "ns")
    kubectl.set_image("sutra-api", "sutra-api", "r.io/sutra-api:v1", "ns")
    assert kubectl.revision("sutra-api", "ns") is None
    assert kubectl.rollout_history("sutra-api", "ns") == ""
    assert kubectl.top_pods("ns") == ""
    with kubectl.port_forward("sutra-api", "ns", 18000, 8000) as forward:
        assert forward is None
    with kubectl.proxy(18001) as proxy:
        assert proxy is None
    revision = "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
    assert [line.removeprefix(f"{STANDIN} ") for line in commands.printed] == [
        "apply --filename -",
        "rollout status deployment/sutra-api --namespace ns --timeout=300s",
        "rollout undo deployment/sutra-api --namespace ns --to-revision=3",
        "rollout undo deployment/sutra-api --namespace ns",
        "set image deployment/sutra-api sutra-api=r.io/sutra-api:v1 --namespace ns",
        f"get deployment/sutra-api --namespace ns --output '{revision}'",
        "rollout history deployment/sutra-api --namespace ns",
        "top pods --namespace ns --no-headers",
        "port-forward svc/sutra-api 18000:8000 --namespace ns --address 127.0.0.1",
        "proxy --port=18001 --address=127.0.0.1",
    ]
    assert capsys.readouterr().out.splitlines() == commands.printed
    assert cluster.calls() == [["config", "current-context"]]


def test_answers_are_read_from_the_cluster(cluster, kubectl):
    cluster.script(context="sutra-staging", revisions={"sutra-api": 4})
    assert kubectl.current_context() == "sutra-staging"
    assert kubectl.revision("sutra-api", "ns") == 4
    assert kubectl.revision("sutra-client", "ns") is None  # NotFound: not created yet
    kubectl.apply("kind: Namespace\n", "namespace")
    assert cluster.records()[-1] == {"argv": ["apply", "--filename", "-"], "stdin": "kind: Namespace\n"}


def test_no_current_context_is_an_error(cluster, kubectl):
    cluster.script(answers=[{"match": ["config", "current-context"], "exit": 1, "stderr": "error: none set"}])
    with pytest.raises(WrongContext, match=r"kubectl has no current context \(error: none set\)"):
        kubectl.current_context()


def test_a_port_forward_runs_while_the_block_does_and_stops_after(cluster, kubectl):
    with kubectl.port_forward("sutra-api", "ns", 18000, 8000) as forward:
        wait_until(cluster.calls, timeout=20, interval=0.05, what="the port-forward to start")
        assert forward.alive
    assert not forward.alive
    assert cluster.calls() == [
        ["port-forward", "svc/sutra-api", "18000:8000", "--namespace", "ns", "--address", "127.0.0.1"]
    ]


def test_a_port_forward_that_ends_early_says_why(cluster, kubectl, caplog):
    reason = 'error: services "sutra-api" not found'
    cluster.script(answers=[{"match": ["port-forward"], "exit": 1, "stderr": reason}])
    sutra = logging.getLogger("sutra")
    sutra.addHandler(caplog.handler)
    try:
        with (
            caplog.at_level(logging.INFO, logger="sutra"),
            kubectl.port_forward("sutra-api", "ns", 18000, 8000) as forward,
        ):
            wait_until(lambda: not forward.alive, timeout=20, interval=0.05, what="the forward to end")
    finally:
        sutra.removeHandler(caplog.handler)
    assert f"[k8s] port-forward to svc/sutra-api ended early: {reason}" in caplog.messages


@pytest.mark.parametrize(
    ("reason", "gone"),
    [
        (
            "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host?",
            True,
        ),
        ('error when retrieving current configuration of: Get "https://10.0.0.1:6443/apis": EOF', True),
        ("Unable to connect to the server: dial tcp 10.0.0.1:6443: i/o timeout", True),
        # The API server answered: a webhook it could not call. Running again would not converge.
        (
            'Error from server (InternalError): Internal error occurred: failed calling webhook "v.x.io": '
            'Post "https://x.svc:443/validate": dial tcp 10.96.7.1:443: connect: connection refused',
            False,
        ),
        ('Deployment.apps "sutra-api" is invalid: spec.selector: field is immutable', False),
    ],
)
def test_a_server_that_stopped_answering_is_told_from_one_that_refused(reason, gone):
    assert server_gone(reason) is gone

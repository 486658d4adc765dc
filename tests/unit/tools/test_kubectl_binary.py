"""Every kubectl command line the wrapper builds, run by the REAL kubectl binary.

No API server can run here, so each line goes to a server address that refuses connections,
with an empty kubeconfig, its own cache and a short request timeout (nothing of the user's is
read and nothing hangs). kubectl parses its whole command line before it dials the server: a
flag, argument or subcommand it does not accept fails with a usage error, a well-formed line
gets as far as the refused connection. Only the second passes here.
"""

from __future__ import annotations

import contextlib
import shlex
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pytest
import requests
import yaml

from sutra_deploy.core.errors import CommandFailed, SutraError, WrongContext
from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.k8s.environments import environment
from sutra_deploy.k8s.manifests import dump_manifests, images_by_deployment, namespace_of, render
from sutra_deploy.k8s.rollout import apply_groups
from sutra_deploy.tools.commands import Background, Commands, Result
from sutra_deploy.tools.kubectl import Kubectl
from sutra_deploy.tools.ports import free_port
from sutra_deploy.tools.waiting import wait_until
from sutra_deploy.verify.smoke import service_ports

from ...kubeconfigs import kubeconfig
from ...standin.recording import REAL_KUBECTL

STACK = load_stack(PROJECT_DIR / "stack.toml")
STAGING = environment(DEFAULTS["sutra"], "staging")
RENDERED = render(Kubectl(Commands(), str(REAL_KUBECTL)), STAGING, STACK)
NAMESPACE = namespace_of(RENDERED)
API = STACK.service("sutra-api").name
CONTAINER, IMAGE = images_by_deployment(RENDERED)[API]

# What kubectl says when the line was fine and only the server was missing.
REFUSED = ("connection refused", "was refused", "dial tcp")
# What it says when the line itself is wrong.
MISUSE = (
    "unknown flag",
    "unknown shorthand flag",
    "unknown command",
    "invalid argument",
    "flags cannot be placed",
    "required flag",
    "Usage:",
    "See 'kubectl",
)


def verdict(output: str) -> str:
    """What kubectl's output says: `misuse` when it refused the command line, `refused` when it
    got as far as dialing the server, `other` for anything else (which fails the tests too)."""
    if any(marker in output for marker in MISUSE):
        return "misuse"
    if any(marker in output for marker in REFUSED):
        return "refused"
    return "other"


@dataclass
class PointedCommands(Commands):
    """Runs every kubectl line with ``pointing`` appended (the refused server, an empty
    kubeconfig), and keeps each line as the wrapper built it and what kubectl answered."""

    pointing: Sequence[str] = ()
    lines: list[tuple[str, ...]] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float | None = None, **options):
        self.lines.append(tuple(argv))
        result = super().run([*argv, *self.pointing], check=False, timeout=timeout or 60, **options)
        self.results.append(result)
        if check and not result.ok:
            raise CommandFailed(result.argv, result.returncode, result.stderr or result.stdout)
        return result

    @contextlib.contextmanager
    def background(self, argv: Sequence[str], **options) -> Iterator[Background | None]:
        self.lines.append(tuple(argv))
        with super().background([*argv, *self.pointing], **options) as handle:
            yield handle


@pytest.fixture(scope="module")
def refused_server() -> Iterator[str]:
    # Bound and never listening: a connection to it is refused at once, and while the socket
    # is held no other process can take the port.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


@pytest.fixture
def commands(refused_server, tmp_path) -> PointedCommands:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("")
    return PointedCommands(
        env={"HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)},
        pointing=(
            f"--server={refused_server}",
            f"--kubeconfig={kubeconfig}",
            f"--cache-dir={tmp_path / 'cache'}",
            "--request-timeout=2s",
        ),
    )


@pytest.fixture
def kubectl(commands) -> Kubectl:
    return Kubectl(commands, str(REAL_KUBECTL))


# Every call to the cluster the code can make, with the arguments it makes it with.
CLUSTER_CALLS: dict[str, Callable[[Kubectl], object]] = {
    "rollout_status": lambda k: k.rollout_status(API, NAMESPACE, STAGING.rollout_timeout),
    "rollout_undo": lambda k: k.rollout_undo(API, NAMESPACE),
    "rollout_undo to a revision": lambda k: k.rollout_undo(API, NAMESPACE, to_revision=3),
    "rollout_history": lambda k: k.rollout_history(API, NAMESPACE),
    "revision": lambda k: k.revision(API, NAMESPACE),
    "set_image": lambda k: k.set_image(API, CONTAINER, IMAGE, NAMESPACE),
    "annotate": lambda k: k.annotate(API, NAMESPACE, {"sutra.ai/release": "r1", "sutra.ai/digest": None}),
    "get": lambda k: k.get("pods,hpa", NAMESPACE),
    "top_pods": lambda k: k.top_pods(NAMESPACE),
    "get_json": lambda k: k.get_json("pods", NAMESPACE),
    "get_json of a cluster-scoped kind": lambda k: k.get_json("nodes"),
    "get_raw": lambda k: k.get_raw("/openapi/v2"),
    "annotations": lambda k: k.annotations(API, NAMESPACE),
    "check_reachable": lambda k: k.check_reachable(),
    "diff": lambda k: k.diff(dump_manifests(RENDERED[:1])),
}


def method(case: str) -> str:
    return case.split()[0]


def test_every_kubectl_method_is_run_here():
    public = {name for name, value in vars(Kubectl).items() if callable(value) and not name.startswith("_")}
    covered = {method(case) for case in CLUSTER_CALLS} | {
        "apply",
        "current_context",
        "port_forward",
        "proxy",
        "kustomize",
        "server",
    }
    assert covered == public


def test_the_api_server_is_read_from_the_kubeconfig_without_asking_it(tmp_path, monkeypatch):
    """What an error about a server that stopped answering names: the current context's server,
    read by the real kubectl from the kubeconfig (that server refuses: nothing is asked)."""
    config = kubeconfig(tmp_path / "kubeconfig", "sutra-staging", ("other",))
    monkeypatch.setenv("KUBECONFIG", str(config))
    server = yaml.safe_load(config.read_text())["clusters"][0]["cluster"]["server"]
    assert Kubectl(Commands(), str(REAL_KUBECTL)).server() == server
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "empty"))
    (tmp_path / "empty").write_text("")
    assert Kubectl(Commands(), str(REAL_KUBECTL)).server() == "of the current context"


def test_kubectl_proxy_serves_the_loopback_port_it_is_given(kubectl, refused_server):
    """The real kubectl proxy, up before any cluster is asked, forwarding to the server of its
    kubeconfig (which refuses here: the proxy says so, with 500)."""
    port = free_port()
    with kubectl.proxy(port) as running:
        wait_until(
            lambda: f"Starting to serve on 127.0.0.1:{port}" in running.output(),
            timeout=15,
            what="kubectl proxy",
        )
        answer = requests.get(f"http://127.0.0.1:{port}/version", timeout=10)
    assert answer.status_code == 500 and "connection refused" in answer.text, answer.text
    assert running.alive is False  # stopped on leaving the block


@pytest.mark.parametrize("case", CLUSTER_CALLS)
def test_kubectl_accepts_the_command_line(case, commands, kubectl):
    with contextlib.suppress(SutraError):  # the refused connection; what matters is why
        CLUSTER_CALLS[case](kubectl)
    [result] = commands.results
    output = result.stderr + result.stdout
    assert not result.ok
    assert verdict(output) == "refused", f"$ {shlex.join(result.argv)}\n{output}"


def test_kubectl_accepts_every_apply_with_the_rendered_manifests_on_stdin(commands, kubectl):
    groups = apply_groups(RENDERED)
    for label, members in groups:
        with pytest.raises(CommandFailed):
            kubectl.apply(dump_manifests(members), label)
    assert commands.lines == [(str(REAL_KUBECTL), "apply", "--filename", "-")] * len(groups)
    for result in commands.results:
        # kubectl read and parsed the objects, then failed to fetch the schemas to check them.
        assert verdict(result.stderr) == "refused", result.stderr


def test_kubectl_accepts_the_context_check(commands, kubectl):
    # The empty kubeconfig names no context; kubectl says so only after parsing the line.
    with pytest.raises(WrongContext, match="current-context is not set"):
        kubectl.current_context()
    [result] = commands.results
    assert verdict(result.stderr) == "other"  # not a usage error


def test_kubectl_accepts_the_port_forward_and_gives_up_on_its_own(commands, kubectl):
    remote = service_ports(RENDERED)[API]
    with kubectl.port_forward(API, NAMESPACE, free_port(), remote) as forward:
        wait_until(lambda: not forward.alive, timeout=30, interval=0.05, what="the port-forward to give up")
        output = forward.output()
    assert commands.lines[0][1] == "port-forward"
    assert verdict(output) == "refused", output


def test_kubectl_renders_with_the_same_flags(commands, kubectl):
    assert "kind: Namespace" in kubectl.kustomize(STAGING.overlay)
    [result] = commands.results
    assert result.ok, result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["apply", "--filenam", "-"],  # a misspelt flag
        ["rollout", "undo", "deployment/x", "--to-revision=three"],  # a flag's value of the wrong type
        ["rollout", "restore", "deployment/x"],  # no such subcommand
        ["top", "pods", "a", "b"],  # too many arguments
    ],
    ids=["flag", "flag value", "subcommand", "arguments"],
)
def test_a_command_line_kubectl_refuses_fails_the_check(argv, commands):
    result = commands.run([str(REAL_KUBECTL), *argv], check=False)
    assert verdict(result.stderr + result.stdout) != "refused", result.stderr

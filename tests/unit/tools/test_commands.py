import pytest

from sutra_deploy.core.errors import CommandFailed, ToolMissing
from sutra_deploy.tools import commands as commands_module
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.waiting import wait_until
from tests.conftest import PROJECT_DIR
from tests.processes import ends_with_its_starter


def test_run_captures_output():
    result = Commands().run(["sh", "-c", "echo out; echo err >&2"])
    assert (result.stdout, result.stderr, result.returncode) == ("out\n", "err\n", 0)


def test_non_zero_exit_raises_with_the_reason():
    with pytest.raises(CommandFailed) as caught:
        Commands().run(["sh", "-c", "echo working; echo 'E: no space left' >&2; exit 3"])
    assert caught.value.returncode == 3
    assert "E: no space left" in str(caught.value)


def test_check_false_returns_the_failure():
    assert Commands().run(["false"], check=False).returncode == 1


def test_dry_commands_prints_world_changing_commands_and_runs_read_only_ones(tmp_path, capsys):
    marker = tmp_path / "made"
    commands = Commands(dry=True)
    commands.run(["touch", str(marker)], mutates=True)
    assert not marker.exists()
    assert commands.printed == [f"touch {marker}"]
    assert capsys.readouterr().out.strip() == f"touch {marker}"
    assert commands.run(["echo", "read"]).stdout == "read\n"


def test_a_dry_line_carries_the_variables_the_real_run_would_set(tmp_path, monkeypatch):
    """Printed as it would run: the variables given beyond this process's own come first (a
    value this process already has is not repeated), and the line, run by a shell, does it."""
    monkeypatch.setenv("SUTRA_KEPT", "same")
    out = tmp_path / "out"
    commands = Commands(dry=True)
    argv = ["sh", "-c", f'echo "$SUTRA_TAG $SUTRA_KEPT" > {out}']
    commands.run(argv, mutates=True, env={"SUTRA_TAG": "v1 rc", "SUTRA_KEPT": "same"})
    [line] = commands.printed
    assert line.startswith("SUTRA_TAG='v1 rc' sh -c ") and "SUTRA_KEPT=" not in line.split(" sh -c ")[0]
    assert not out.exists()
    Commands().run(["sh", "-c", line])
    assert out.read_text() == "v1 rc same\n"


def test_streaming_calls_back_per_line_and_keeps_output_for_errors():
    lines = []
    with pytest.raises(CommandFailed) as caught:
        Commands().run(["sh", "-c", "echo one; echo two >&2; exit 4"], on_line=lines.append)
    assert lines == ["one", "two"]
    assert "two" in caught.value.output


def test_missing_tool_says_how_to_install_it():
    with pytest.raises(ToolMissing, match="mmdebstrap-not-here is not installed"):
        Commands().run(["mmdebstrap-not-here"])


def test_open_stdout_streams_bytes_and_raises_on_failure():
    commands = Commands()
    with commands.open_stdout(["sh", "-c", "printf abc"]) as stream:
        assert stream.read() == b"abc"
    with (
        pytest.raises(CommandFailed, match="boom"),
        commands.open_stdout(["sh", "-c", "echo boom >&2; exit 1"]) as stream,
    ):
        stream.read()


def test_a_failing_command_wins_over_the_reader_it_broke():
    import tarfile

    with (
        pytest.raises(CommandFailed, match="No such image"),
        Commands().open_stdout(["sh", "-c", "echo 'Error: No such image: x' >&2; exit 1"]) as stream,
        tarfile.open(fileobj=stream, mode="r|"),
    ):
        pass


def test_a_command_that_hangs_past_its_timeout_is_a_failure():
    with pytest.raises(CommandFailed, match=r"no answer within 0\.2s"):
        Commands().run(["sleep", "5"], timeout=0.2)


def test_a_background_command_runs_until_the_block_ends_then_stops():
    with Commands().background(["sh", "-c", "echo listening; exec sleep 60"]) as process:
        wait_until(lambda: "listening" in process.output(), timeout=5, interval=0.05, what="output")
        assert process.alive
    assert not process.alive


def test_a_background_command_that_ignores_sigterm_is_killed(monkeypatch):
    monkeypatch.setattr(commands_module, "STOP_GRACE_SECONDS", 0.3)
    with Commands().background(
        ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"]
    ) as process:
        wait_until(lambda: "ready" in process.output(), timeout=5, interval=0.05, what="output")
    assert not process.alive


def test_a_dry_background_command_is_printed_not_started(capsys):
    commands = Commands(dry=True)
    with commands.background(["kubectl", "port-forward", "svc/x", "1:2"]) as process:
        assert process is None
    assert commands.printed == ["kubectl port-forward svc/x 1:2"]


def test_an_executable_given_by_path_must_exist(tmp_path):
    with pytest.raises(ToolMissing, match="not an executable"):
        Commands().run([str(tmp_path / "nothing-here")])


def test_a_background_command_ends_when_the_process_that_started_it_is_killed(tmp_path):
    """SIGKILL runs no teardown: the parent-death signal still ends the throwaway registry or
    port-forward a killed verify or deploy started."""
    pid_file = tmp_path / "child.pid"
    script = (
        "import pathlib, time\n"
        "from sutra_deploy.tools.commands import Commands\n"
        "with Commands().background(['sleep', '300']) as child:\n"
        f"    pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))\n"
        "    time.sleep(300)\n"
    )
    ends_with_its_starter(script, pid_file, PROJECT_DIR)

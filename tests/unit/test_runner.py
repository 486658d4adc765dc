import pytest

from sutra_deploy.errors import CommandFailed, ToolMissing
from sutra_deploy.runner import Runner


def test_run_captures_output():
    result = Runner().run(["sh", "-c", "echo out; echo err >&2"])
    assert (result.stdout, result.stderr, result.returncode) == ("out\n", "err\n", 0)


def test_non_zero_exit_raises_with_the_reason():
    with pytest.raises(CommandFailed) as caught:
        Runner().run(["sh", "-c", "echo working; echo 'E: no space left' >&2; exit 3"])
    assert caught.value.returncode == 3
    assert "E: no space left" in str(caught.value)


def test_check_false_returns_the_failure():
    assert Runner().run(["false"], check=False).returncode == 1


def test_dry_runner_prints_world_changing_commands_and_runs_read_only_ones(tmp_path, capsys):
    marker = tmp_path / "made"
    runner = Runner(dry=True)
    runner.run(["touch", str(marker)], mutates=True)
    assert not marker.exists()
    assert runner.printed == [f"touch {marker}"]
    assert capsys.readouterr().out.strip() == f"touch {marker}"
    assert runner.run(["echo", "read"]).stdout == "read\n"


def test_streaming_calls_back_per_line_and_keeps_output_for_errors():
    lines = []
    with pytest.raises(CommandFailed) as caught:
        Runner().run(["sh", "-c", "echo one; echo two >&2; exit 4"], on_line=lines.append)
    assert lines == ["one", "two"]
    assert "two" in caught.value.output


def test_missing_tool_says_how_to_install_it():
    with pytest.raises(ToolMissing, match="mmdebstrap-not-here is not installed"):
        Runner().run(["mmdebstrap-not-here"])


def test_open_stdout_streams_bytes_and_raises_on_failure():
    runner = Runner()
    with runner.open_stdout(["sh", "-c", "printf abc"]) as stream:
        assert stream.read() == b"abc"
    with (
        pytest.raises(CommandFailed, match="boom"),
        runner.open_stdout(["sh", "-c", "echo boom >&2; exit 1"]) as stream,
    ):
        stream.read()


def test_a_failing_command_wins_over_the_reader_it_broke():
    import tarfile

    with (
        pytest.raises(CommandFailed, match="No such image"),
        Runner().open_stdout(["sh", "-c", "echo 'Error: No such image: x' >&2; exit 1"]) as stream,
        tarfile.open(fileobj=stream, mode="r|"),
    ):
        pass


def test_a_command_that_hangs_past_its_timeout_is_a_failure():
    with pytest.raises(CommandFailed, match=r"no answer within 0\.2s"):
        Runner().run(["sleep", "5"], timeout=0.2)

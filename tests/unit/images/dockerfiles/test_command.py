"""What the image runs: the pre-plan command (ENTRYPOINT and CMD kept apart, an init wrapper
dropped) or the package's console script, as python3 runs it; and a shell refused."""

from __future__ import annotations

import pytest

from sutra_deploy.core.errors import DockerfileRefused

from .checkout import (
    API,
    API_DOCKERFILE,
    API_PORT,
    CONTROL,
    CONTROL_DOCKERFILE,
    final_stage,
    make_checkout,
    plan,
)


def test_console_script_when_the_checkout_has_no_old_dockerfile(checkout):
    make_checkout(checkout, {f"{CONTROL}/Dockerfile": None})
    (checkout / CONTROL / "Dockerfile").unlink()
    result = plan(checkout, "sutra-control")["sutra-control"]
    final = final_stage(result.text)
    assert final["ENTRYPOINT"][0].exec_form == [
        "python3",
        "-c",
        "import sys; from sutra_control.main import main; sys.exit(main())",
    ]
    assert final["RUN"][0].exec_form == ["python3", "-c", "import sutra_control.main"]
    assert "command from console script sutra-control = sutra_control.main:main" in "\n".join(result.notes)


def test_entrypoint_and_cmd_stay_apart_and_an_init_wrapper_goes(checkout):
    old = API_DOCKERFILE.replace(
        'CMD ["uvicorn", "sutra_api.main:app", "--host", "0.0.0.0", "--port", "8080"]',
        'ENTRYPOINT ["/usr/bin/tini", "--", "/root/.local/bin/gunicorn"]\n'
        'CMD ["-b", "0.0.0.0:8080", "-k", "uvicorn.workers.UvicornWorker", "sutra_api.main:app"]',
    )
    make_checkout(checkout, {f"{API}/Dockerfile": old})
    final = final_stage(plan(checkout, "sutra-api")["sutra-api"].text)
    assert final["ENTRYPOINT"][0].exec_form == ["python3", "-m", "gunicorn"]
    assert final["CMD"][0].exec_form == [
        *("-b", f"0.0.0.0:{API_PORT}", "-k", "uvicorn.workers.UvicornWorker", "sutra_api.main:app")
    ]
    assert final["RUN"][0].exec_form == ["python3", "-c", "import gunicorn, sutra_api.main"]


@pytest.mark.parametrize(
    ("cmd", "feature"),
    [
        ("CMD python -m sutra_control --port $CONTROL_PORT", "$CONTROL_PORT"),
        ("CMD python -m sutra_control migrate && python -m sutra_control", "&&"),
    ],
)
def test_a_command_that_needs_a_shell_is_refused(checkout, cmd, feature):
    make_checkout(
        checkout,
        {f"{CONTROL}/Dockerfile": CONTROL_DOCKERFILE.replace("CMD exec python -m sutra_control", cmd)},
    )
    with pytest.raises(DockerfileRefused) as refused:
        plan(checkout, "sutra-control")
    message = str(refused.value)
    assert message.startswith(f"sutra-control: the CMD in {CONTROL}/Dockerfile:7 needs a shell (`{feature}`)")
    assert "write it in exec form" in message and "\n" not in message


@pytest.mark.parametrize(
    "instruction",
    ['ENTRYPOINT ["sh", "-c", "python -m sutra_control"]', 'ENTRYPOINT ["./entrypoint.sh"]'],
)
def test_a_shell_or_a_shell_script_in_exec_form_is_refused(checkout, instruction):
    make_checkout(
        checkout,
        {
            f"{CONTROL}/Dockerfile": CONTROL_DOCKERFILE.replace(
                "CMD exec python -m sutra_control", instruction
            )
        },
    )
    with pytest.raises(DockerfileRefused, match=r"a shell, which the distroless runtime does not have"):
        plan(checkout, "sutra-control")


def test_a_module_whose_main_block_runs_uvicorn_is_served_on_the_stacks_port(checkout):
    """`python -m sutra_api.main` whose `__main__` runs uvicorn on its own port: no flag reaches
    that port, so the image serves the same app with uvicorn's command line, on stack.toml's
    port, and its import check imports the module that holds the app."""
    old = API_DOCKERFILE.replace(
        'CMD ["uvicorn", "sutra_api.main:app", "--host", "0.0.0.0", "--port", "8080"]',
        'CMD ["python", "-m", "sutra_api.main"]',
    )
    main = (checkout / API / "sutra_api" / "main.py").read_text()
    run = '    uvicorn.run(app, host="0.0.0.0", port=9000)\n'
    block = 'if __name__ == "__main__":\n    import uvicorn\n\n' + run
    served = f"{main}\n\n{block}"
    make_checkout(checkout, {f"{API}/Dockerfile": old, f"{API}/sutra_api/main.py": served})
    result = plan(checkout, "sutra-api")["sutra-api"]
    final = final_stage(result.text)
    [cmd] = final.get("CMD", []) or final["ENTRYPOINT"]
    assert cmd.exec_form == [
        "python3", "-m", "uvicorn", "sutra_api.main:app", "--host", "0.0.0.0", "--port", str(API_PORT)
    ]  # fmt: skip
    assert final["RUN"][0].exec_form == ["python3", "-c", "import uvicorn, sutra_api.main"]
    line = served.splitlines().index('    uvicorn.run(app, host="0.0.0.0", port=9000)') + 1
    assert (
        f"python3 -m sutra_api.main starts uvicorn on port 9000 in its __main__ block "
        f"({API}/sutra_api/main.py:{line}): the image runs `python3 -m uvicorn sutra_api.main:app` "
        "on stack.toml's port instead"
    ) in result.notes

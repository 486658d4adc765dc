"""The runtime's environment and port: what the pre-plan image's ENV becomes (kept, replaced,
moved to stack.toml's port, or left out and said), and an old EXPOSE that stack.toml's port
overrides."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from sutra_deploy.core.errors import DockerfileRefused

from .checkout import CONTROL, CONTROL_DOCKERFILE, CONTROL_PORT, STACK, final_stage, inv, make_checkout, plan

OLD_ENV = "ENV PORT=1234 SUTRA_MODE=prod A=$B PYTHONUNBUFFERED=0 UV_INDEX_URL=x http_proxy=http://proxy:3128"


def test_the_old_environment_is_kept_replaced_or_left_out(checkout):
    old = CONTROL_DOCKERFILE.replace(f"EXPOSE {CONTROL_PORT}", f"EXPOSE 1234\n{OLD_ENV}")
    make_checkout(checkout, {f"{CONTROL}/Dockerfile": old})
    result = plan(checkout, "sutra-control")["sutra-control"]
    assert result.summary["env"] == {"PORT": str(CONTROL_PORT), "SUTRA_MODE": "prod"}
    assert f"{CONTROL}/Dockerfile EXPOSEs 1234; stack.toml's port {CONTROL_PORT} wins" in result.notes
    assert f"ENV PORT=1234 is the old port: set to stack.toml's {CONTROL_PORT}" in result.notes
    assert "ENV PYTHONUNBUFFERED=0 replaced: the image sets PYTHONUNBUFFERED=1" in result.notes
    assert "ENV A=$B left out: it refers to another variable; set it where the image runs" in result.notes
    assert "ENV left out (build-time or user-site settings): UV_INDEX_URL" in result.notes
    assert any(n.startswith("ENV http_proxy left out: trust and proxies") for n in result.notes)
    final = final_stage(result.text)
    env = dict(w.split("=", 1) for i in final["ENV"] for w in i.words())
    assert env == {
        "PYTHONPATH": "/opt/app",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PORT": str(CONTROL_PORT),
        "SUTRA_MODE": "prod",
    }
    assert [i.arguments for i in final["EXPOSE"]] == [str(CONTROL_PORT)]


def test_with_a_stack_file_written_for_this_checkout_what_its_code_never_reads_is_left_out(checkout):
    old_env = "ENV SUTRA_MODE=prod CONTROL_HOST=0.0.0.0 TOKENIZERS_PARALLELISM=false"
    old = CONTROL_DOCKERFILE.replace(f"EXPOSE {CONTROL_PORT}", f"EXPOSE {CONTROL_PORT}\n{old_env}")
    make_checkout(checkout, {f"{CONTROL}/Dockerfile": old})
    line = old.splitlines().index(old_env) + 1
    described = replace(STACK, source_root=checkout)  # as `inv init` records the root it read

    result = plan(checkout, "sutra-control", stack=described)["sutra-control"]

    # CONTROL_HOST is among what control's code reads; the tokenizers library reads its own.
    assert result.summary["env"] == {"CONTROL_HOST": "0.0.0.0", "TOKENIZERS_PARALLELISM": "false"}
    assert (
        f"ENV left out: SUTRA_MODE ({CONTROL}/Dockerfile:{line}): sutra-control's code never reads it "
        "(stack file `reads`; add the name there if a library it uses does)"
    ) in result.notes
    # The reference stack's `reads` say nothing about another checkout's code: all of it stays.
    kept = plan(checkout, "sutra-control")["sutra-control"].summary["env"]
    assert kept == {"SUTRA_MODE": "prod", "CONTROL_HOST": "0.0.0.0", "TOKENIZERS_PARALLELISM": "false"}


# --- credentials: never carried, never shown ------------------------------------------------

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
DB_URL = "postgres://sutra:hunter2hunter2@db:5432/sutra"


def test_a_credential_in_the_old_environment_is_left_out_named_by_line_and_never_shown(checkout):
    old = CONTROL_DOCKERFILE.replace(
        f"EXPOSE {CONTROL_PORT}",
        f"EXPOSE {CONTROL_PORT}\nENV SUTRA_MODE=prod \\\n    AWS_SECRET_ACCESS_KEY={AWS_SECRET}\n"
        f"ENV AWS_ACCESS_KEY_ID={AWS_KEY_ID} DATABASE_URL={DB_URL} TOKENIZERS_PARALLELISM=false",
    )
    make_checkout(checkout, {f"{CONTROL}/Dockerfile": old})
    line = old.splitlines().index(f"EXPOSE {CONTROL_PORT}") + 2  # the ENV after it

    result = plan(checkout, "sutra-control")["sutra-control"]

    assert result.summary["env"] == {"SUTRA_MODE": "prod", "TOKENIZERS_PARALLELISM": "false"}
    notes = "\n".join(result.notes)
    assert (
        f"ENV AWS_SECRET_ACCESS_KEY ({CONTROL}/Dockerfile:{line}) left out: named like a credential" in notes
    )
    assert f"ENV AWS_ACCESS_KEY_ID ({CONTROL}/Dockerfile:{line + 2}) left out: an AWS access key" in notes
    assert "ENV DATABASE_URL" in notes and "a URL with a password" in notes
    assert "rotate it" in notes
    shown = notes + result.text + json.dumps(result.as_json())
    for value in (AWS_SECRET, AWS_KEY_ID, "hunter2hunter2"):
        assert value not in shown


def test_a_credential_that_would_reach_the_image_another_way_is_refused(checkout):
    token = "ghp_" + "x" * 36
    old = CONTROL_DOCKERFILE.replace(
        "CMD exec python -m sutra_control",
        f'CMD ["python", "-m", "sutra_control", "--github-token", "{token}"]',
    )
    make_checkout(checkout, {f"{CONTROL}/Dockerfile": old})

    with pytest.raises(
        DockerfileRefused, match=r"would carry a credential on its line \d+ \(a GitHub token\)"
    ) as err:
        plan(checkout, "sutra-control")
    assert token not in str(err.value)


def test_an_old_value_named_as_a_credential_is_looked_for_everywhere(checkout):
    old = CONTROL_DOCKERFILE.replace(
        "CMD exec python -m sutra_control",
        "ENV SUTRA_ADMIN_PASSWORD=correct-horse\nCMD python -m sutra_control --admin-password correct-horse",
    )
    make_checkout(checkout, {f"{CONTROL}/Dockerfile": old})

    with pytest.raises(DockerfileRefused, match=f"SUTRA_ADMIN_PASSWORD at {CONTROL}/Dockerfile:"):
        plan(checkout, "sutra-control")


def test_inv_dockerfiles_refuses_and_writes_nothing(checkout):
    old = CONTROL_DOCKERFILE.replace(
        "CMD exec python -m sutra_control", f'CMD ["python", "-m", "sutra_control", "--key", "{AWS_KEY_ID}"]'
    )
    make_checkout(checkout, {f"{CONTROL}/Dockerfile": old})
    before = sorted(p.relative_to(checkout).as_posix() for p in checkout.rglob("*"))

    result = inv("--root", str(checkout), "--write")

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and AWS_KEY_ID not in result.stderr + result.stdout
    assert "sutra-control: the generated" in result.stderr and "nothing was written" in result.stderr
    assert sorted(p.relative_to(checkout).as_posix() for p in checkout.rglob("*")) == before

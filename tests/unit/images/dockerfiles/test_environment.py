"""The runtime's environment and port: what the pre-plan image's ENV becomes (kept, replaced,
moved to stack.toml's port, or left out and said), and an old EXPOSE that stack.toml's port
overrides."""

from __future__ import annotations

from .checkout import CONTROL, CONTROL_DOCKERFILE, CONTROL_PORT, final_stage, make_checkout, plan

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

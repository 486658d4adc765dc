"""Package data: what the pre-plan Dockerfile copied beside the code goes where the code finds
it, what it kept elsewhere stays there, and metadata or a package the service does not depend
on stays out."""

from __future__ import annotations

from .checkout import (
    API,
    API_DOCKERFILE,
    CONTROL,
    CONTROL_DOCKERFILE,
    final_stage,
    make_checkout,
    package_dir,
    plan,
)

HYBRID = package_dir("sutra-hybrid")


def test_data_beside_the_code_and_elsewhere(checkout):
    copies = "COPY sutra_control ./sutra_control\nCOPY static ./static\nCOPY setup.py ./\n"
    copies += "COPY static/style.css /etc/sutra/style.css\n"
    make_checkout(checkout, {f"{CONTROL}/Dockerfile": CONTROL_DOCKERFILE.replace("COPY . .\n", copies)})
    result = plan(checkout, "sutra-control")["sutra-control"]
    assert result.summary["package_data"] == ["static", "static/style.css"]
    assert "package data static copied to /opt/app/static" in result.notes
    assert "package data static/style.css copied to /etc/sutra/style.css" in result.notes
    assert "COPY static /opt/app/static" in result.text  # the deps stage, beside the code
    final = final_stage(result.text)
    assert [i.arguments for i in final["COPY"]] == [
        "/opt/app /opt/app",
        "static/style.css /etc/sutra/style.css",
    ]
    assert "COPY setup.py" not in result.text


def test_a_package_the_service_does_not_depend_on_is_left_out(checkout):
    old = API_DOCKERFILE.replace(
        "COPY packages/sutra-api/templates ./templates\n",
        f"COPY packages/sutra-api/templates ./templates\nCOPY {HYBRID}/sutra_hybrid ./sutra_hybrid\n",
    )
    make_checkout(checkout, {f"{API}/Dockerfile": old})
    result = plan(checkout, "sutra-api")["sutra-api"]
    assert result.summary["package_data"] == [f"{API}/templates"]
    left_out = f"copies {HYBRID}, which sutra-api does not depend on: left out"
    assert any(n.endswith(left_out) for n in result.notes), result.notes
    assert "sutra_hybrid" not in result.text

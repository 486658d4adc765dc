"""One image's plan as a whole: what it says it carried over from the pre-plan Dockerfile and
the metadata, and what it left out."""

from __future__ import annotations

from .checkout import API, API_PORT, plan


def test_api_says_what_it_carried_over_and_what_it_left_out(checkout):
    result = plan(checkout, "sutra-api")["sutra-api"]
    notes = "\n".join(result.notes)
    assert f"EXPOSEs 8080; stack.toml's port {API_PORT} wins" in notes
    assert f"--port 8080 disagrees with stack.toml's port {API_PORT}" in notes
    assert f"command from CMD ({API}/Dockerfile:29): uvicorn becomes python3 -m uvicorn" in notes
    assert "does not declare: torch" in notes
    assert "ENV left out (build-time or user-site settings): PATH, PIP_NO_CACHE_DIR" in notes
    # The build machine's trust store and proxy never reach the image (a site CA has a setting).
    assert "ENV SSL_CERT_FILE left out: trust and proxies are the machine's" in notes
    assert "ENV HTTPS_PROXY left out" in notes
    assert "optional extras left out: metrics" in notes
    assert "apt-get gcc g++ curl; apk curl" in notes
    assert "sutra.dockerfiles.build_packages" in notes
    assert result.summary["entrypoint"]["source"].startswith(f"CMD ({API}/Dockerfile:29)")

"""storage-server: the HTTP item API, its limits, persistence and the healthcheck command."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from reference_harness import Launcher, Service, free_port

TRICKY = 'quotes " backslash \\ newline \n tab \t bell \x07 unicode é 漢字 </script>'


@pytest.fixture
def storage(launcher: Launcher, storage_binary: Path, tmp_path: Path) -> Service:
    return launcher.storage(storage_binary, tmp_path / "data")


def client(service: Service) -> httpx.Client:
    return httpx.Client(base_url=service.url, timeout=5, trust_env=False)


def test_health_counts_items(storage: Service) -> None:
    with client(storage) as http:
        assert http.get("/health").json() == {"status": "ok", "items": 0}
        http.put("/items/a", content=b"x")
        assert http.get("/health").json() == {"status": "ok", "items": 1}


def test_put_get_list_search_delete(storage: Service) -> None:
    with client(storage) as http:
        created = http.put("/items/tricky-1", content=TRICKY.encode())
        assert created.status_code == 201
        assert created.json() == {"id": "tricky-1"}
        assert http.put("/items/plain_2", content=b"Paris is in France").status_code == 201

        got = http.get("/items/tricky-1")
        assert got.status_code == 200
        assert got.text == TRICKY

        # The listing must be valid JSON whatever the content holds.
        listed = http.get("/items")
        assert listed.status_code == 200
        assert sorted(listed.json(), key=lambda item: item["id"]) == [
            {"id": "plain_2", "content": "Paris is in France"},
            {"id": "tricky-1", "content": TRICKY},
        ]

        hits = http.get("/search", params={"q": "PARIS"}).json()
        assert [hit["id"] for hit in hits] == ["plain_2"]
        hits = http.get(f"/search?q={quote('漢字')}").json()
        assert [hit["id"] for hit in hits] == ["tricky-1"]
        assert http.get("/search", params={"q": "nowhere"}).json() == []

        # PUT replaces.
        http.put("/items/plain_2", content=b"Rome is in Italy")
        assert http.get("/items/plain_2").text == "Rome is in Italy"

        assert http.delete("/items/plain_2").status_code == 204
        assert http.get("/items/plain_2").status_code == 404
        assert http.delete("/items/plain_2").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/items/missing", None, 404),
        ("PUT", "/items/bad.id", b"x", 400),
        ("PUT", "/items/" + "a" * 129, b"x", 400),
        ("PUT", "/items/ok", b"\xff\xfe not utf-8", 400),
        ("GET", "/search", None, 400),
        ("GET", "/search?q=%zz", None, 400),
        ("GET", "/nowhere", None, 404),
        ("POST", "/items/ok", b"x", 405),
        ("POST", "/items", b"x", 405),
        ("DELETE", "/health", None, 405),
    ],
)
def test_rejects_bad_requests(
    storage: Service, method: str, path: str, body: bytes | None, status: int
) -> None:
    with client(storage) as http:
        response = http.request(method, path, content=body)
    assert response.status_code == status, response.text
    assert "error" in response.json()


def test_longest_valid_id_is_accepted(storage: Service) -> None:
    with client(storage) as http:
        assert http.put("/items/" + "a" * 128, content=b"x").status_code == 201


def test_body_over_one_mib_is_rejected(storage: Service) -> None:
    with client(storage) as http:
        assert http.put("/items/big", content=b"a" * (1024 * 1024)).status_code == 201
        response = http.put("/items/bigger", content=b"a" * (1024 * 1024 + 1))
        assert response.status_code == 413
        assert http.get("/items/bigger").status_code == 404


def test_data_survives_a_kill_and_restart(launcher: Launcher, storage_binary: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = launcher.storage(storage_binary, data)
    with client(first) as http:
        http.put("/items/fact", content=TRICKY.encode())
        http.put("/items/gone", content=b"deleted before the crash")
        http.delete("/items/gone")
    first.stop(signal.SIGKILL)  # no chance to flush anything: acknowledged means durable

    # A write killed mid-way leaves a temp file: it must be cleaned up, never loaded.
    (data / "items" / "fact.tmp").write_text("half-written")

    second = launcher.storage(storage_binary, data)
    with client(second) as http:
        assert http.get("/items/fact").text == TRICKY
        assert http.get("/items/gone").status_code == 404
        assert http.get("/health").json()["items"] == 1
    assert not (data / "items" / "fact.tmp").exists()


def test_sigterm_stops_the_server_promptly(storage: Service) -> None:
    storage.process.send_signal(signal.SIGTERM)
    assert storage.process.wait(timeout=3) == 0


def test_healthcheck_command(storage: Service, storage_binary: Path) -> None:
    def healthcheck(port: int) -> int:
        env = {**os.environ, "STORAGE_PORT": str(port)}
        return subprocess.run(
            [str(storage_binary), "healthcheck"], env=env, capture_output=True, timeout=10
        ).returncode

    assert healthcheck(storage.port) == 0
    assert healthcheck(free_port()) != 0
    storage.stop()
    assert healthcheck(storage.port) != 0


def test_unwritable_data_dir_fails_fast(launcher: Launcher, storage_binary: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    port = free_port()
    env = {"STORAGE_HOST": "127.0.0.1", "STORAGE_PORT": str(port), "STORAGE_PATH": str(blocker)}
    service = launcher.start("storage-server", [str(storage_binary)], env, port, expect_exit=True)
    assert service.process.wait(timeout=5) != 0
    assert "cannot open data directory" in service.logs()

"""A synthetic checkout shaped like a real Sutra monorepo, not like the reference services: an
API whose `__main__` runs uvicorn on another port than its Dockerfile exposes, whose health
check probes a route it does not have (its only GET route for that is `/`), which stores facts
at another path with another id field and searches by GET, and reads settings through
pydantic-settings with a prefix; a Rust storage server; a static web client served by busybox;
a compose file naming them; node_modules and *.egg-info in the tree."""

from __future__ import annotations

import textwrap
from pathlib import Path

RUST_SERVER = """\
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn main() {
    let port = std::env::var("STORAGE_PORT").unwrap_or_else(|_| "50051".to_string());
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        let up = TcpStream::connect(format!("127.0.0.1:{}", port)).is_ok();
        std::process::exit(if up { 0 } else { 1 });
    }
    let listener = TcpListener::bind(format!("0.0.0.0:{}", port)).expect("bind");
    for stream in listener.incoming() {
        if let Ok(mut stream) = stream {
            let mut buffer = [0u8; 512];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(b"ok\\n");
        }
    }
}
"""

API_MAIN = """\
import os
import uuid

from fastapi import FastAPI
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUTRA_API_")
    storage_addr: str = "storage-server:50051"
    port: int = 8080


LOG_LEVEL = os.getenv("LOG_LEVEL", "info")
FACTS: dict[str, str] = {}
app = FastAPI()


@app.get("/")
def index():
    return {"service": "sutra-api", "facts": len(FACTS)}


@app.post("/api/v1/facts")
def add_fact(body: dict):
    fact_id = uuid.uuid4().hex
    FACTS[fact_id] = body["fact"]["text"]
    return {"fact": {"uuid": fact_id, "stored": True}}


@app.get("/api/v1/search")
def search(q: str):
    hits = [{"uuid": i, "text": text} for i, text in FACTS.items() if q in text]
    return {"data": {"hits": hits, "total": len(hits)}}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="0.0.0.0", port=9000)
"""

# Its journey as the API really has it: what a user writes into [journey] after `inv init`
# said to check the one it proposed.
JOURNEY = """\
[journey.learn]
service = "sutra-api"
method = "POST"
path = "/api/v1/facts"
body = { fact = { text = "journey fact {marker}" } }
id = "/fact/uuid"

[journey.find]
service = "sutra-api"
method = "GET"
path = "/api/v1/search?q={marker}"
found = { list = "/data/hits", match = "/uuid", equals = "{id}" }
"""

FILES = {
    "docker-compose.yml": """\
        services:
          storage-server:
            image: synthetic-storage:latest
            build: ./packages/sutra-storage
            ports: ["50051:50051"]
          sutra-api:
            image: synthetic-api:latest
            build: {context: ., dockerfile: packages/sutra-api/Dockerfile}
            ports: ["8000:8000"]
            environment:
              SUTRA_API_STORAGE_ADDR: storage-server:50051
              SUTRA_API_UNUSED_FLAG: "1"
          sutra-client:
            image: synthetic-client:latest
            build: ./packages/sutra-client
            ports: ["8080:8080"]
        """,
    "packages/sutra-storage/Cargo.toml": """\
        [package]
        name = "storage-server"
        version = "0.1.0"
        edition = "2021"
        """,
    "packages/sutra-storage/src/main.rs": RUST_SERVER,
    # A plan-shaped Dockerfile: its bases are build ARGs that stack.toml's base images replace.
    "packages/sutra-storage/Dockerfile": """\
        ARG RUST_IMAGE=rust:1-slim-bookworm
        FROM ${RUST_IMAGE} AS build
        WORKDIR /src
        COPY Cargo.toml ./
        COPY src ./src
        RUN RUSTFLAGS="-C target-feature=+crt-static" \\
            cargo build --release --offline --target x86_64-unknown-linux-gnu \\
            && cp target/x86_64-unknown-linux-gnu/release/storage-server /storage-server \\
            && strip /storage-server
        FROM scratch
        COPY --from=build /storage-server /storage-server
        EXPOSE 50051
        USER 65532:65532
        HEALTHCHECK --interval=5s --timeout=3s --retries=3 CMD ["/storage-server", "healthcheck"]
        ENTRYPOINT ["/storage-server"]
        """,
    "packages/sutra-api/pyproject.toml": """\
        [project]
        name = "sutra-api"
        version = "1.0.0"
        dependencies = ["fastapi>=0.100", "uvicorn>=0.23", "pydantic-settings>=2"]
        """,
    # Before the plan: a here-document and a base only a registry has (v1 only).
    "packages/sutra-api/Dockerfile": """\
        FROM python:3.11-slim
        RUN cat > /etc/sutra-release <<EOF
        synthetic 1.0
        EOF
        COPY packages/sutra-api /app
        RUN pip install /app
        EXPOSE 8000
        HEALTHCHECK CMD curl -fsS http://localhost:8000/healthz || exit 1
        CMD ["python", "-m", "sutra_api.main"]
        """,
    "packages/sutra-api/sutra_api/__init__.py": "",
    "packages/sutra-api/sutra_api/main.py": API_MAIN,
    "packages/sutra-api/tests/test_main.py": 'import os\nos.environ["ONLY_IN_TESTS"] = "1"\n',
    "packages/sutra-api/sutra_api.egg-info/PKG-INFO": "Name: sutra-api\n",
    "packages/sutra-client/Dockerfile": """\
        ARG DEBIAN_IMAGE=debian:bookworm-slim
        FROM ${DEBIAN_IMAGE} AS busybox
        RUN apt-get update && apt-get install -y --no-install-recommends busybox-static \\
            && rm -rf /var/lib/apt/lists/*
        FROM scratch
        COPY --from=busybox /bin/busybox /bin/busybox
        COPY www /www
        EXPOSE 8080
        USER 65532:65532
        STOPSIGNAL SIGKILL
        HEALTHCHECK CMD ["/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
        ENTRYPOINT ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
        """,
    "packages/sutra-client/www/index.html": "<!doctype html><title>Sutra</title>\n",
    "packages/sutra-client/node_modules/left-pad/package.json": '{"name": "left-pad"}\n',
}


def line_of(name: str, text: str) -> int:
    """The 1-based line of ``text`` in FILES[name], as written."""
    lines = textwrap.dedent(FILES[name]).splitlines()
    return 1 + next(i for i, line in enumerate(lines) if text in line)


def make_monorepo(root: Path) -> Path:
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def init_checkout(folder: Path) -> Path:
    """The synthetic checkout under ``folder``, and the stack file `inv init` writes for it
    (``folder/stack.toml``, returned)."""
    from sutra_deploy.init import init_stack

    root = make_monorepo(folder / "checkout")
    init_stack(root, write=folder / "stack.toml", force=False, dry=False)
    return folder / "stack.toml"

"""A synthetic checkout shaped like a real Sutra monorepo, not like the reference services: an
API whose `__main__` runs uvicorn on another port than its Dockerfile exposes, whose health
check probes a route it does not have (its only GET route for that is `/`), which stores facts
at another path with another id field and searches by GET, and reads settings through
pydantic-settings with a prefix; a Rust storage server; a static web client served by busybox;
a compose file naming them; node_modules and *.egg-info in the tree."""

from __future__ import annotations

import textwrap
from pathlib import Path

FILES = {
    "docker-compose.yml": """\
        services:
          storage-server:
            build: ./packages/sutra-storage
            ports: ["50051:50051"]
          sutra-api:
            build: {context: ., dockerfile: packages/sutra-api/Dockerfile}
            ports: ["8000:8000"]
            environment:
              SUTRA_API_STORAGE_ADDR: storage-server:50051
              SUTRA_API_UNUSED_FLAG: "1"
          sutra-web:
            build: ./packages/sutra-web
            ports: ["8080:8080"]
        """,
    "packages/sutra-storage/Cargo.toml": """\
        [package]
        name = "storage-server"
        version = "0.1.0"
        edition = "2021"
        """,
    "packages/sutra-storage/src/main.rs": "fn main() {}\n",
    "packages/sutra-storage/Dockerfile": """\
        FROM rust:1-slim-bookworm AS build
        COPY . /src
        RUN cargo build --release --manifest-path /src/Cargo.toml
        FROM debian:bookworm-slim
        COPY --from=build /src/target/release/storage-server /storage-server
        EXPOSE 50051
        ENTRYPOINT ["/storage-server"]
        """,
    "packages/sutra-api/pyproject.toml": """\
        [project]
        name = "sutra-api"
        version = "1.0.0"
        dependencies = ["fastapi>=0.100", "uvicorn>=0.23", "pydantic-settings>=2"]
        """,
    "packages/sutra-api/Dockerfile": """\
        FROM python:3.11-slim
        COPY packages/sutra-api /app
        RUN pip install /app
        EXPOSE 8000
        HEALTHCHECK CMD curl -fsS http://localhost:8000/healthz || exit 1
        CMD ["python", "-m", "sutra_api.main"]
        """,
    "packages/sutra-api/sutra_api/__init__.py": "",
    "packages/sutra-api/sutra_api/main.py": """\
        import os

        from fastapi import FastAPI
        from pydantic_settings import BaseSettings, SettingsConfigDict


        class Settings(BaseSettings):
            model_config = SettingsConfigDict(env_prefix="SUTRA_API_")
            storage_addr: str = "storage-server:50051"
            port: int = 8080


        LOG_LEVEL = os.getenv("LOG_LEVEL", "info")
        app = FastAPI()


        @app.get("/")
        def index():
            return {"service": "sutra-api"}


        @app.post("/api/v1/facts")
        def add_fact(body: dict):
            return {"fact": {"uuid": "u-1"}}


        @app.get("/api/v1/search")
        def search(q: str):
            return {"data": {"hits": []}}


        if __name__ == "__main__":
            import uvicorn

            uvicorn.run(app, host="0.0.0.0", port=9000)
        """,
    "packages/sutra-api/tests/test_main.py": 'import os\nos.environ["ONLY_IN_TESTS"] = "1"\n',
    "packages/sutra-api/sutra_api.egg-info/PKG-INFO": "Name: sutra-api\n",
    "packages/sutra-web/Dockerfile": """\
        FROM debian:bookworm-slim
        COPY www /www
        EXPOSE 8080
        HEALTHCHECK CMD ["/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
        ENTRYPOINT ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
        """,
    "packages/sutra-web/www/index.html": "<!doctype html><title>Sutra</title>\n",
    "packages/sutra-web/node_modules/left-pad/package.json": '{"name": "left-pad"}\n',
}


def make_monorepo(root: Path) -> Path:
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root

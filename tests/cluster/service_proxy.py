"""Services for the test cluster, as kube-proxy gives them: per Service, a userspace proxy that
follows the Service's Endpoints (which the real endpoints controller keeps to the ready pods)
and forwards each Service port to its target port, reachable by the Service's name (and
`NAME.NAMESPACE`, `NAME.NAMESPACE.svc`, `….svc.cluster.local`) from the namespace's pods.

Each proxy is a container on the namespace's Docker network, with the Service's names as
network aliases (Docker's DNS answers them), running `main` below from the locally built
Python runtime base image. The agent writes the Service's current targets into a file in a
folder the proxy reads on every new connection; no ready endpoint refuses the connection, as
kube-proxy's REJECT does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from pathlib import Path

TARGETS = "targets.json"


# --- inside the proxy container -----------------------------------------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def main(folder: str) -> None:  # pragma: no cover - runs in the proxy container
    table = Path(folder) / TARGETS
    turns = itertools.count()

    def targets(port: int) -> list[list]:
        try:
            return json.loads(table.read_text()).get(str(port), [])
        except (OSError, ValueError):
            return []

    async def serve(port: int) -> None:
        async def handle(reader, writer):
            choices = targets(port)
            if not choices:
                writer.close()
                return
            host, target = choices[next(turns) % len(choices)]
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(host, target)
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

        server = await asyncio.start_server(handle, "0.0.0.0", port)
        async with server:
            await server.serve_forever()

    async def run() -> None:
        ports = [int(p) for p in os.environ["SERVICE_PORTS"].split(",")]
        await asyncio.gather(*(serve(p) for p in ports))

    asyncio.run(run())


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1])


# --- in the agent -----------------------------------------------------------------------


def targets_of(service: dict, endpoints: dict | None) -> dict[str, list[list]]:
    """Service port -> [[pod IP, target port], …] over the ready addresses, matched by port
    name as kube-proxy matches them."""
    out: dict[str, list[list]] = {}
    for port in service["spec"].get("ports") or []:
        name = port.get("name", "")
        chosen = []
        for subset in (endpoints or {}).get("subsets") or []:
            for endpoint_port in subset.get("ports") or []:
                if endpoint_port.get("name", "") == name:
                    chosen += [[a["ip"], endpoint_port["port"]] for a in subset.get("addresses") or []]
        out[str(port["port"])] = chosen
    return out


def write_targets(folder: Path, targets: dict[str, list[list]]) -> None:
    """Atomically: the proxy never reads half a table."""
    staged = folder / f".{TARGETS}.tmp"
    staged.write_text(json.dumps(targets))
    os.replace(staged, folder / TARGETS)

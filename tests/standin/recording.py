"""Driving the kubectl RECORDING STAND-IN (tests/standin/kubectl) from tests: where its state
lives, how to script its answers, and what it recorded. It talks to no cluster."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

STANDIN = Path(__file__).with_name("kubectl")
REAL_KUBECTL = Path(sys.executable).parent / "kubectl"


@dataclass(frozen=True)
class RecordingCluster:
    state: Path

    @property
    def env(self) -> dict[str, str]:
        """What `inv` needs to use the stand-in instead of kubectl."""
        return {
            "INVOKE_SUTRA_KUBECTL": str(STANDIN),
            "KUBECTL_STANDIN_DIR": str(self.state),
            "KUBECTL_REAL": str(REAL_KUBECTL),
        }

    def script(self, **content) -> None:
        (self.state / "script.json").write_text(json.dumps(content))

    def records(self) -> list[dict]:
        log = self.state / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def calls(self) -> list[list[str]]:
        return [record["argv"] for record in self.records()]

    def applied(self) -> list[dict]:
        """Every object sent to `kubectl apply`, in order."""
        return [
            doc
            for record in self.records()
            if record["argv"][0] == "apply"
            for doc in yaml.safe_load_all(record["stdin"])
            if doc
        ]


def recording_cluster(tmp_path: Path) -> RecordingCluster:
    state = tmp_path / "kubectl-standin"
    state.mkdir()
    return RecordingCluster(state)

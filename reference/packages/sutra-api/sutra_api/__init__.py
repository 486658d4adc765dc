"""sutra-api: the public HTTP API of Sutra (learn facts, query them)."""

__version__ = "0.2.0"

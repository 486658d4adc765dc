"""sutra-hybrid: ranks stored items against a query by embedding similarity."""

__version__ = "0.2.0"

"""sutra-control: a status page for the Sutra stack (standard library only)."""

__version__ = "0.2.0"

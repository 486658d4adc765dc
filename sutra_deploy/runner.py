"""Moved to :mod:`sutra_deploy.commands`; this name goes once every caller imports from there."""

from .commands import Commands as Runner
from .commands import Result

__all__ = ["Result", "Runner"]

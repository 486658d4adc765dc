"""Moved to :mod:`sutra_deploy.engine`; this name goes once every caller imports from there."""

from .engine import Engine as Docker
from .engine import ImageInfo

__all__ = ["Docker", "ImageInfo"]

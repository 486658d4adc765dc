"""Phase 2 on a real checkout: write the v2 Dockerfile (``Dockerfile.optimized``) that a Sutra
checkout does not have yet, from what the checkout itself says.

For each Python service whose v2 Dockerfile is missing (or every one, with ``force``), the
package's declared runtime dependencies (as fix-deps reads them), the monorepo packages it
depends on, and what its pre-plan Dockerfile says (the command, port, environment, package
data, tighter pins) become a Dockerfile in the reference implementation's v2 shape. A package
that fix-deps finds coupled to another service, a command that needs a shell, or a monorepo
dependency outside the build context is refused: nothing is generated that would carry it.

The parts, each depending only on those above it:

- ``shell``: enough of the shell's grammar to read RUN and CMD lines
- ``parse``: Dockerfiles (continuations, here-documents, exec and shell form, stages)
- ``pins``: version specifiers compared; requirements files read
- ``lock``: the lock file every install pins to
- ``preplan``: what a pre-plan Dockerfile says about its service
- ``package``: what a service's package says (through :mod:`sutra_deploy.deps`)
- ``model``: settings, errors, the image's layout, and the records passed between the parts
- ``dependencies``, ``command``, ``environment``, ``package_data``, ``health``: the parts of
  one image's plan (what it installs, runs, sets, carries and checks)
- ``image``: the plan of one image, its parts assembled
- ``layers``: the dependencies several images share, as layers they share (with a lock)
- ``render``: that plan written as Dockerfile text
- ``generate``: `inv dockerfiles`: every image planned, then shown or written

Everything is worked out before anything is written ("converge, then act"): a refusal for
one service leaves every file as it was.
"""

from __future__ import annotations

import importlib
from typing import Any

# Loaded on first use: `inv build` reads Dockerfiles with ``parse`` (which imports this package
# first), and the generator behind the names below (deps' parsers, packaging) takes a tenth of
# a second to import, which a build that has nothing to do should not pay.
_LAZY = {
    "DockerfileRefused": ".model",
    "DockerfileSettings": ".model",
    "Generated": ".model",
    "ImageSpec": ".model",
    "generate_dockerfiles": ".generate",
    "plan_dockerfiles": ".generate",
    "write_generated": ".generate",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name], __name__), name)

"""The source tree's Python packages: each service's, and the shared ones under packages/,
each read once per audit, with the modules it provides and the dependencies it declares."""

from __future__ import annotations

from pathlib import Path

from ..core.stack import Service, Stack
from .declarations import declared_name, read_declarations, read_extras
from .imports import own_modules
from .model import PYPROJECT, SETUP_PY, Declaration, PythonPackage, requirement_key


def package_folder(root: Path, service: Service, stack: Stack) -> Path:
    """A service's package is the folder of its v2 Dockerfile, whether that file exists or not."""
    return root / Path(service.dockerfile(stack.default_version)).parent


def has_metadata(folder: Path) -> bool:
    return (folder / PYPROJECT).is_file() or (folder / SETUP_PY).is_file()


class Monorepo:
    """Every Python package under the source root, by its own metadata, read once per audit."""

    def __init__(self, root: Path, stack: Stack) -> None:
        self.root = root
        self._packages: dict[Path, PythonPackage | None] = {}
        self._declarations: dict[Path, tuple[Declaration, ...]] = {}
        self._extras: dict[Path, dict[str, str]] = {}
        folders = sorted(p for p in (root / "packages").glob("*") if p.is_dir())
        folders += [package_folder(root, s, stack) for s in stack.services]
        self.module_owner: dict[str, str] = {}
        for folder in folders:
            pkg = self.package_at(folder)
            for module in sorted(pkg.modules if pkg else ()):
                self.module_owner.setdefault(module, pkg.distribution)

    def package_at(self, folder: Path) -> PythonPackage | None:
        if folder not in self._packages:
            self._packages[folder] = self._read_package(folder)
        return self._packages[folder]

    def _read_package(self, folder: Path) -> PythonPackage | None:
        if not has_metadata(folder):
            return None
        rel = folder.relative_to(self.root).as_posix()
        name = declared_name(folder, rel)
        # A name computed at build time cannot be known statically; the folder is the convention.
        return PythonPackage(folder, rel, name if name is not None else folder.name, own_modules(folder))

    def declarations(self, pkg: PythonPackage) -> tuple[Declaration, ...]:
        if pkg.folder not in self._declarations:
            self._declarations[pkg.folder] = read_declarations(pkg)
        return self._declarations[pkg.folder]

    def declared_names(self, pkg: PythonPackage) -> dict[str, str]:
        """canonical name -> the first requirement that declares it, over both files."""
        names: dict[str, str] = {}
        for declaration in self.declarations(pkg):
            for raw in declaration.requirements:
                names.setdefault(requirement_key(raw, declaration.rel), raw)
        return names

    def optional_names(self, pkg: PythonPackage) -> dict[str, str]:
        """canonical name -> the first requirement that declares it in an optional extra."""
        if pkg.folder not in self._extras:
            names: dict[str, str] = {}
            for rel, raw in read_extras(pkg):
                names.setdefault(requirement_key(raw, rel), raw)
            self._extras[pkg.folder] = names
        return self._extras[pkg.folder]

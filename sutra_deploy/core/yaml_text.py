"""YAML for the Go tools that read what this project writes (kubectl, kustomize, compose).

PyYAML writes YAML 1.1 and leaves a string unquoted when a YAML 1.1 reader would read it back
as a string; Go's readers follow YAML 1.2, which reads more plain scalars as numbers. A release
named by its commit, `236840575e04`, went out unquoted and came back to kubectl as the number
2.36840575e+12 (an annotation must be a string: the apply was refused). So every string that a
YAML 1.1 or 1.2 reader might take for anything but a string is written quoted: those that begin
like a number, and the words either version reads as a boolean or null.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

# Numbers in either version: digits, signs, dots, exponents, 0x/0o/0b, sexagesimal 1:20, .inf.
_NUMBER_LIKE = re.compile(r"[-+]?(\.?[0-9]|\.inf|\.nan)[0-9A-Za-z_.:+-]*", re.IGNORECASE)
_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", ".nan", "-.inf", "+.inf"}


class _GoSafeDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # a value written twice is written twice: people read these files


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if value == "" or value.lower() in _WORDS or _NUMBER_LIKE.fullmatch(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    if "\n" in value.rstrip("\n"):  # lines (a patch, a script) read as lines: a literal block
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_str(value)


_GoSafeDumper.add_representer(str, _string)


def dump(document: Any) -> str:
    """One document, keys in their order, every string read back as a string by Go's YAML."""
    return yaml.dump(document, Dumper=_GoSafeDumper, sort_keys=False, allow_unicode=True)


def dump_all(documents: Iterable[Any]) -> str:
    return "---\n".join(dump(d) for d in documents)

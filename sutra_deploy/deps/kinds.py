"""The kinds of finding fix-deps reports: plain names, importable without the rest of the
phase (tasks.py lists them in `--fail-on`'s help at every start)."""

COUPLING = "service-coupling"
UNDECLARED = "undeclared"
UNUSED = "unused"
DISAGREEMENT = "disagreement"
# Imported only where the code runs on without it (`except ImportError`, `find_spec`), and
# declared nowhere, not even in an extra: worth a look, not a broken image.
OPTIONAL_UNDECLARED = "optional-undeclared"
FINDING_KINDS = (COUPLING, UNDECLARED, UNUSED, DISAGREEMENT, OPTIONAL_UNDECLARED)
# What fails the check when --fail-on names nothing.
DEFAULT_FAIL_ON = (COUPLING, UNDECLARED, UNUSED, DISAGREEMENT)

"""Old pins against declared ranges, and requirements files."""

import pytest
from packaging.specifiers import SpecifierSet

from sutra_deploy.images.dockerfiles.pins import compatible, parse_pin, requirement_lines, tighter_clauses


@pytest.mark.parametrize(
    ("declared", "old", "added"),
    [
        (">=1.24", "<2.0", "<2.0"),  # the plan's example: numpy<2.0 against numpy>=1.24
        (">=0.100", "==0.104.1", "==0.104.1"),  # an exact pin is tighter
        (">=0.100", ">=0.90", ""),  # looser: nothing added
        (">=1.24,<2", "<2.0", ""),  # the same bound
        ("~=1.4", "<2", ""),  # ~=1.4 already means <2
        ("==1.4.*", ">=1.4", ""),
        (">=1", "!=0.5", ""),  # excludes a version the range never allowed
        (">=1", "!=1.5", "!=1.5"),
        ("", "==1.0", "==1.0"),  # no range declared
        (">=2", "<=2", "<=2"),
    ],
)
def test_tighter_clauses(declared, old, added):
    assert str(tighter_clauses(SpecifierSet(declared), SpecifierSet(old))) == added


@pytest.mark.parametrize(
    ("a", "b", "together"),
    [
        (">=1.24", "<2.0", True),
        (">=1.24", "<1.20", False),
        (">2", "<=2", False),
        (">=2", "<=2", True),
        (">=2,!=2", "<=2", False),
        ("~=1.4", ">=2", False),
    ],
)
def test_compatible(a, b, together):
    assert compatible(SpecifierSet(a), SpecifierSet(b)) is together


def test_requirements_file_lines():
    text = (
        "# pins\n"
        "fastapi==0.104.1  # the web framework\n"
        "-r base.txt\n"
        "-cconstraints.txt\n"
        "uvicorn[standard]>=0.24 \\\n"
        "    ; python_version > '3'\n"
        "./packages/local\n"
        "--index-url https://example.com/simple\n"
        "numpy<2.0 --hash=sha256:abc\n"
        "git+https://example.com/x.git\n"
    )
    lines = requirement_lines(text)
    assert [(str(e.requirement) if e.requirement else e.include, e.line) for e in lines] == [
        ("fastapi==0.104.1", 2),
        ("base.txt", 3),
        ("constraints.txt", 4),
        ('uvicorn[standard]>=0.24; python_version > "3"', 5),
        ("numpy<2.0", 9),
    ]
    assert [e.constraint for e in lines if e.include] == [False, True]


def test_parse_pin_leaves_out_paths_and_urls():
    assert parse_pin("numpy<2") is not None
    for word in (".", "/app", "./pkg", "pkg.whl", "pkg @ https://example.com/pkg.whl", "not a requirement!"):
        assert parse_pin(word) is None

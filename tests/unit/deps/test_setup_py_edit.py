"""setup.py's install_requires edited with libcst: every layout, every comment kept."""

import ast
import itertools
import textwrap

import pytest

from .monorepos import POLICY, apply, audit, pyproject, read, source_rel, tree


def test_setup_call_without_install_requires_gets_one_in_its_layout(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-api/setup.py": """\
                from setuptools import setup

                if __name__ == "__main__":
                    setup(
                        name="sutra-api",
                        version="1",  # bumped by release
                    )
            """,
            "sutra-api/sutra_api/__init__.py": "import httpx\nimport fastapi\n",
        },
    )
    apply(root)
    assert read(root, "sutra-api/setup.py") == textwrap.dedent(
        f"""\
        from setuptools import setup

        if __name__ == "__main__":
            setup(
                name="sutra-api",
                version="1",  # bumped by release
                install_requires=[
                    "{POLICY.known_specs["httpx"]}",
                    "fastapi",
                ],
            )
        """
    )


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('x = ["a", "sutra-hybrid"]\n', 'x = ["a", "numpy"]\n'),
        ('x = ["sutra-hybrid", "a"]\n', 'x = ["a", "numpy"]\n'),
        ("x = ('a', 'sutra-hybrid')\n", "x = ('a', 'numpy')\n"),
        # The removed item's own comment goes; comment lines above and below it stay.
        (
            'x = [\n    "a",  # keep\n    # group\n    "sutra-hybrid",  # drop\n    # end\n]\n',
            'x = [\n    "a",  # keep\n    # group\n    # end\n    "numpy",\n]\n',
        ),
        # No trailing comma: none is added.
        ('x = [\n  "a",\n  "sutra-hybrid"  # drop\n]\n', 'x = [\n  "a",\n  "numpy"\n]\n'),
        ('x = ["a",\n     "sutra-hybrid"]\n', 'x = ["a",\n     "numpy"]\n'),
    ],
)
def test_setup_py_list_edits_keep_the_list_style(tmp_path, before, after):
    root = tree(
        tmp_path,
        {
            "sutra-api/setup.py": "from setuptools import setup\n" + before + "setup(install_requires=x)\n",
            "sutra-api/sutra_api/__init__.py": "import a\nimport numpy\n",
            "sutra-hybrid/pyproject.toml": pyproject("sutra-hybrid", "numpy"),
        },
    )
    apply(root, "sutra-api")
    assert read(root, "sutra-api/setup.py") == (
        "from setuptools import setup\n" + after + "setup(install_requires=x)\n"
    )


def layouts(items: list[str]):
    quoted = [f'"{item}"' for item in items]
    yield "x = [" + ", ".join(quoted) + "]\n"
    yield "x = [\n" + "".join(f"    {q},  # c{i}\n" for i, q in zip(items, quoted, strict=True)) + "]\n"
    yield "x = [\n" + ",\n".join(f"    {q}" for q in quoted) + "\n]\n"
    yield (
        "x = [\n    # head\n"
        + "".join(f"    {q},\n    # after {i}\n" for i, q in zip(items, quoted, strict=True))
        + "]\n"
    )
    if items:
        yield "x = [" + ",\n     ".join(quoted) + "]\n"
        yield "x = (" + ", ".join(quoted) + ("," if len(items) == 1 else "") + ")\n"


def test_every_layout_edits_to_the_wanted_list_and_keeps_kept_comments(tmp_path):
    setup_py = tmp_path / source_rel("sutra-api/setup.py")
    code = tmp_path / source_rel("sutra-api/sutra_api/__init__.py")
    code.parent.mkdir(parents=True)
    cases = 0
    for count in range(4):
        items = [f"p{i}" for i in range(count)]
        for kept in itertools.chain.from_iterable(itertools.combinations(items, k) for k in range(count + 1)):
            for added in ([], ["n0"], ["n0", "n1"]):
                for layout in layouts(items):
                    setup_py.write_text(f"from setuptools import setup\n{layout}setup(install_requires=x)\n")
                    code.write_text("".join(f"import {name}\n" for name in [*kept, *added]))
                    apply(tmp_path, "sutra-api")
                    text = setup_py.read_text()
                    assignment = ast.parse(text).body[1]
                    assert isinstance(assignment, ast.Assign)
                    assert list(ast.literal_eval(assignment.value)) == [*kept, *added], (layout, text)
                    for item in items:
                        assert (f"# c{item}" in text) == (f"# c{item}" in layout and item in kept), text
                        assert (f"# after {item}" in text) == (f"# after {item}" in layout), text
                    assert audit(tmp_path, "sutra-api").findings == ()
                    cases += 1
    assert cases == 264  # 0-3 items, every subset kept, 0-2 added, each layout

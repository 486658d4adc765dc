"""Enough of the shell to read RUN and CMD lines, and to tell when a CMD needs a shell."""

import pytest

from sutra_deploy.images.dockerfiles.shell import exec_words, parse_shell, scripts, shell_feature


def test_commands_operators_and_redirections():
    commands = parse_shell("apt-get update && apt-get install -y gcc 2>&1 | tee log; echo done")
    assert [c.argv for c in commands] == [
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "gcc"],
        ["tee", "log"],
        ["echo", "done"],
    ]
    assert [c.operator for c in commands] == ["&&", "|", ";", ""]
    [redirect] = commands[1].redirects
    assert (redirect.operator, redirect.target.text) == ("2>&", "1")


def test_quotes_are_removed_and_expansions_marked():
    [command] = parse_shell("""echo "$HOME" '$literal' ~/x *.py "a b" c\\ d""")
    words = command.words[1:]
    assert [w.text for w in words] == ["$HOME", "$literal", "~/x", "*.py", "a b", "c d"]
    assert [w.expands for w in words] == [True, False, False, False, False, False]
    assert [w.globs for w in words] == [False, False, True, True, False, False]


def test_heredoc_bodies_belong_to_their_command_and_lines_are_counted():
    commands = parse_shell("cat > r.txt <<EOF\nfastapi\nnumpy<2\nEOF\npip install -r r.txt\n")
    assert commands[0].argv == ["cat"]
    assert [(r.operator, r.target.text, r.body) for r in commands[0].redirects] == [
        (">", "r.txt", None),
        ("<<", "EOF", "fastapi\nnumpy<2\n"),
    ]
    assert commands[1].argv == ["pip", "install", "-r", "r.txt"]
    assert commands[1].line == 5


def test_a_heredoc_fed_to_the_shell_is_read_as_commands():
    found = list(scripts(parse_shell("<<EOF\npip install a\nsh <<X\npip install b\nX\nEOF")))
    # Each with its line in the whole text: base + its line in its own script.
    lines = {" ".join(c.argv): base + c.line for c, base in found}
    assert lines["pip install a"] == 2
    assert lines["pip install b"] == 4
    python_fed = list(scripts(parse_shell("python3 <<EOF\nimport os\nEOF")))
    assert [c.argv for c, _ in python_fed] == [["python3"]]


@pytest.mark.parametrize(
    ("command", "feature"),
    [
        ("uvicorn app:app --host 0.0.0.0 --port 8000", None),
        ("exec python -m sutra_control", None),
        ("python -c 'import os; print(\"$x\")'", None),  # inside single quotes: no expansion
        ("uvicorn app:app --port $PORT", "$PORT"),
        ('uvicorn app:app --port "${PORT:-8000}"', '"${PORT:-8000}"'),
        ("migrate && uvicorn app:app", "&&"),
        ("uvicorn app:app > /var/log/app.log", ">"),
        ("cd /app; python main.py", ";"),
        ("APP_ENV=prod uvicorn app:app", "APP_ENV=prod"),
        ("source venv/bin/activate", "source"),
        ("python main.py *.cfg", "*.cfg"),
        ("echo `date`", "`date`"),
    ],
)
def test_what_only_a_shell_can_do(command, feature):
    assert shell_feature(command) == feature


def test_a_plain_shell_form_becomes_its_words():
    assert exec_words("exec gunicorn -b 0.0.0.0:8000 'app:create_app()'") == [
        "gunicorn",
        "-b",
        "0.0.0.0:8000",
        "app:create_app()",
    ]


def test_an_unclosed_quote_is_a_feature_not_a_crash():
    assert "quote is not closed" in shell_feature("uvicorn 'app:app")

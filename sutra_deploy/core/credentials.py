"""Telling a credential from a setting, for what must never ship in an image.

An image is copied to every registry, node and laptop that pulls it, and each of its layers
keeps what it was given for good: a password in an ENV is as public as the image. Two signs
mark a credential, and either is enough:

- its *value* has the shape of one: a token format a provider documents (AWS, GitHub, GitLab,
  Slack, Stripe, Google, OpenAI, Anthropic, Hugging Face, npm, PyPI), a PEM private key, a JWT,
  or a URL carrying a password;
- its *name* says so (`DB_PASSWORD`, `OPENAI_API_KEY`, `HF_TOKEN`, `BASIC_AUTH`), and its value
  is not one that no credential has: empty, a number, a yes/no, an absolute path (the file a
  secret is mounted at, `GOOGLE_APPLICATION_CREDENTIALS=/run/secrets/gcp.json`).

Names are read word by word, so the many settings of an AI stack that only mention tokens
(`MAX_TOKENS`, `TOKENIZERS_PARALLELISM`) are settings. Nothing here ever returns or shows a
credential's value: callers say where it is and why it looks like one.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Documented token formats: (what it is, pattern). Anchored on a word boundary; lengths are
# the providers' minimums, so a short example word never matches.
TOKEN_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (what, re.compile(pattern))
    for what, pattern in (
        ("an AWS access key", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"),
        ("a GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
        ("a GitLab token", r"\bglpat-[A-Za-z0-9_-]{20,}"),
        ("a Slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
        ("a Stripe key", r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
        ("a Google API key", r"\bAIza[0-9A-Za-z_-]{35}"),
        ("an OpenAI or Anthropic key", r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}"),
        ("a Hugging Face token", r"\bhf_[A-Za-z0-9]{30,}"),
        ("an npm token", r"\bnpm_[A-Za-z0-9]{36}"),
        ("a PyPI token", r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{20,}"),
        ("a private key", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
        ("a JSON Web Token", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    )
)
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")

# A name is a credential's when one of its words is one of these ...
_SECRET_WORDS = frozenset(
    {"PASSWORD", "PASSWD", "PASS", "PASSPHRASE", "SECRET", "SECRETS", "TOKEN", "APIKEY", "CREDENTIALS"}
)
# ... or ends with one of these (DBPASSWORD, AUTHTOKEN, CLIENTSECRET) ...
_SECRET_ENDINGS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY", "ACCESSKEY", "PRIVATEKEY")
# ... or KEY follows one of these (OPENAI_API_KEY, AWS_SECRET_ACCESS_KEY, JWT_SIGNING_KEY) ...
_KEY_KINDS = frozenset(
    {"API", "ACCESS", "SECRET", "PRIVATE", "SIGNING", "ENCRYPTION", "MASTER", "CLIENT", "JWT", "HMAC"}
)
# ... or the last word is one of these (BASIC_AUTH, DB_PWD, SENTRY_DSN).
_SECRET_LAST_WORDS = frozenset({"AUTH", "PWD", "DSN", "COOKIE", "SESSIONKEY"})
# A name that says where a credential is, or something about one, is not one (TOKEN_URL,
# PASSWORD_FILE, SECRET_KEY_PATH, PASSWORD_MIN_LENGTH).
_ABOUT_WORDS = frozenset(
    {
        "FILE",
        "PATH",
        "DIR",
        "URL",
        "URI",
        "ENDPOINT",
        "HOST",
        "PORT",
        "HEADER",
        "NAME",
        "TYPE",
        "MODE",
        "LENGTH",
        "TTL",
        "EXPIRY",
        "EXPIRES",
        "TIMEOUT",
        "ENABLED",
        "REQUIRED",
        "LIMIT",
    }
)
# Values no credential has.
_PLAIN_VALUE = re.compile(r"(?i)(?:|[-+]?\d+(?:\.\d+)?|true|false|yes|no|on|off|none|null)")


def credential_in_value(value: str) -> str | None:
    """What ``value`` holds that has a credential's shape (``"a GitHub token"``), or None."""
    for what, pattern in TOKEN_FORMATS:
        if pattern.search(value):
            return what
    for match in _URL.finditer(value):
        try:
            password = urlsplit(match.group()).password
        except ValueError:  # not a URL after all (a bad port, an unclosed [)
            continue
        if password and not password.startswith("$"):
            return "a URL with a password"
    return None


def credential_name(name: str) -> bool:
    """Whether ``name`` (an environment variable, a build arg) names a credential."""
    words = [w for w in re.split(r"[^A-Z0-9]+", name.upper()) if w]
    if not words or name == "PWD" or words[-1] in _ABOUT_WORDS:
        return False
    if words[-1] in _SECRET_LAST_WORDS:
        return True
    for index, word in enumerate(words):
        if word in _SECRET_WORDS or word.endswith(_SECRET_ENDINGS):
            return True
        if word == "KEY" and index > 0 and words[index - 1] in _KEY_KINDS:
            return True
    return False


def credential(name: str, value: str) -> str | None:
    """Why the setting ``name=value`` is a credential (``"named like one"``, ``"an AWS access
    key"``), or None when it is a setting."""
    shaped = credential_in_value(value)
    if shaped:
        return shaped
    plain = _PLAIN_VALUE.fullmatch(value.strip()) or (value.startswith("/") and " " not in value)
    if credential_name(name) and not plain:
        return "named like a credential"
    return None

"""A credential told from a setting: by its value's shape, or by its name unless its value
is one no credential has. The settings an AI stack sets that only mention tokens or keys stay
settings."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sutra_deploy.core.credentials import credential, credential_in_value, credential_name

CREDENTIALS = [
    ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "named like a credential"),
    ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE", "an AWS access key"),
    ("SETTINGS", "region=eu key=AKIAIOSFODNN7EXAMPLE", "an AWS access key"),
    ("OPENAI_API_KEY", "sk-proj-" + "a1B2" * 8, "an OpenAI or Anthropic key"),
    ("ANTHROPIC_API_KEY", "sk-ant-" + "x9Y8" * 10, "an OpenAI or Anthropic key"),
    ("HF_TOKEN", "hf_" + "AbCd" * 9, "a Hugging Face token"),
    ("GH", "ghp_" + "Z" * 36, "a GitHub token"),
    ("CI_TOKEN", "glpat-" + "q" * 20, "a GitLab token"),
    ("DATABASE_URL", "postgres://sutra:hunter2@db:5432/sutra", "a URL with a password"),
    ("INDEX", "https://__token__:abc@pypi.example.com/simple", "a URL with a password"),
    ("DB_PASSWORD", "hunter2", "named like a credential"),
    ("db_pass", "s3cr3t", "named like a credential"),
    ("SECRET_KEY", "django-insecure-abc", "named like a credential"),
    ("JWT_SIGNING_KEY", "c2VjcmV0", "named like a credential"),
    ("BASIC_AUTH", "admin:admin", "named like a credential"),
    ("SENTRY_DSN", "https://abc123@o1.ingest.sentry.io/1", "named like a credential"),
    ("REDIS_AUTHTOKEN", "tok", "named like a credential"),
    ("TLS", "-----BEGIN EC PRIVATE KEY-----\nMHc...", "a private key"),
    (
        "SESSION",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
        "a JSON Web Token",
    ),
]

SETTINGS = [
    ("TOKENIZERS_PARALLELISM", "false"),
    ("MAX_TOKENS", "512"),
    ("MAX_TOKEN", "4096"),
    ("HF_HOME", "/models/hf"),
    ("OMP_NUM_THREADS", "1"),
    ("SUTRA_STORAGE_SERVER", "storage-server:50051"),
    ("PASSWORD_MIN_LENGTH", "8"),
    ("TOKEN_URL", "https://auth.example.com/oauth/token"),
    ("SECRET_KEY_FILE", "/run/secrets/key"),
    ("GOOGLE_APPLICATION_CREDENTIALS", "/run/secrets/gcp.json"),
    ("AUTH_MODE", "oauth"),
    ("AUTH_ENABLED", "true"),
    ("PWD", "/app"),
    ("CACHE_KEY_PREFIX", "sutra"),
    ("PRIMARY_KEY", "id"),
    ("API_URL", "http://sutra-api:8000"),
    ("DB_PASSWORD", ""),
    ("MODEL", "sk-small"),
    ("BYPASS", "cache"),
    ("PROXY", "http://proxy.example.com:3128"),
    ("REGISTRY", "https://user@registry.example.com"),
]


@pytest.mark.parametrize(("name", "value", "why"), CREDENTIALS, ids=[c[0] for c in CREDENTIALS])
def test_a_credential_is_found_and_said_why(name, value, why):
    assert credential(name, value) == why


@pytest.mark.parametrize(("name", "value"), SETTINGS, ids=[f"{n}={v}" for n, v in SETTINGS])
def test_a_setting_is_a_setting(name, value):
    assert credential(name, value) is None


def test_a_password_taken_from_another_variable_is_not_one():
    assert credential_in_value("postgres://sutra:${DB_PASSWORD}@db/sutra") is None


def test_names_are_read_word_by_word():
    assert credential_name("OPENAI_API_KEY")
    assert credential_name("clientSecret".upper())
    assert not credential_name("KEYBOARD_LAYOUT")
    assert not credential_name("")


@given(st.text(), st.text())
def test_any_name_and_value_give_an_answer_not_an_exception(name, value):
    assert credential(name, value) in {None, "named like a credential"} | {
        what for what in (credential_in_value(value),) if what
    }


@given(st.text())
def test_any_text_gives_a_reason_or_none(value):
    found = credential_in_value(value)
    assert found is None or (isinstance(found, str) and found)

"""The one parser of image references, against the distribution reference grammar (cases from
distribution/reference's reference_test.go, with Docker's rule for which part is a domain)."""

import pytest

from sutra_deploy.core.errors import BadReference, SutraError
from sutra_deploy.core.references import (
    ImageParts,
    ImageReference,
    Registry,
    domain_and_path,
    image_parts,
    parse_digest,
    parse_reference,
    parse_registry,
    parse_repository,
    parse_tag,
    validate_registry,
)

SHA256 = "sha256:" + "f" * 64
SHA512 = "sha512:" + "f" * 128


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest"),
    [
        ("test_com", None, "test_com", None, None),
        ("test.com:tag", None, "test.com", "tag", None),
        ("test.com:5000", None, "test.com", "5000", None),  # no '/': 5000 is a tag
        ("test.com/repo:tag", "test.com", "repo", "tag", None),
        ("test:5000/repo", "test:5000", "repo", None, None),
        ("test:5000/repo:tag", "test:5000", "repo", "tag", None),
        (f"test:5000/repo@{SHA256}", "test:5000", "repo", None, SHA256),
        (f"test:5000/repo:tag@{SHA256}", "test:5000", "repo", "tag", SHA256),
        ("lowercase:Uppercase", None, "lowercase", "Uppercase", None),
        ("a/" * 127 + "a:tag-puts-this-over-max", None, "a/" * 127 + "a", "tag-puts-this-over-max", None),
        (
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
            "sub-dom1.foo.com",
            "bar/baz/quux",
            "some-long-tag",
            None,
        ),
        (
            "b.gcr.io/test.example.com/my-app:test.example.com",
            "b.gcr.io",
            "test.example.com/my-app",
            "test.example.com",
            None,
        ),
        (f"xn--7o8h.com/myimage:xn--7o8h.com@{SHA512}", "xn--7o8h.com", "myimage", "xn--7o8h.com", SHA512),
        ("foo/foo_bar.com:8080", None, "foo/foo_bar.com", "8080", None),  # Docker Hub: foo is no host
        ("192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", "5050", None),
        ("localhost/repo", "localhost", "repo", None, None),
        ("[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000", "repo", "tag", None),
        ("[::1]:5000/repo", "[::1]:5000", "repo", None, None),
        ("a__b/c--d/e.f_g:v2", None, "a__b/c--d/e.f_g", "v2", None),
        (
            "registry.example.com/sutra-ai/sutra-api:v2",
            "registry.example.com",
            "sutra-ai/sutra-api",
            "v2",
            None,
        ),
    ],
)
def test_valid_references(text, domain, path, tag, digest):
    parsed = parse_reference(text)
    assert parsed == ImageReference(domain, path, tag, digest)
    assert str(parsed) == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "non-empty"),
        (":justtag", "the repository name is empty"),
        (f"@{SHA256}", "the repository name is empty"),
        ("repo@sha256:" + "f" * 34, "64 lower-case hex digits"),
        ("repo@sha256:" + "F" * 64, "64 lower-case hex digits"),
        ("validname@invaliddigest:" + "f" * 64, "not one of sha256"),
        ("repo@sha256:abc", "is not ALGORITHM:HEX"),
        ("Uppercase:tag", "must be lower-case"),
        ("test:5000/Uppercase/lowercase:tag", "must be lower-case"),
        ("a/" * 128 + "a:tag", "at most 255"),
        ("aa/asdf$$^/aa", "is not a repository"),
        ("[2001:db8::1]", "is not a repository"),
        ("[2001:db8::1]:5000", "is not a repository"),
        ("[fe80::1%eth0]:5000/repo", "is not a registry HOST[:PORT]"),
        ("reg.example.com;rm -rf /x", "is not a registry HOST[:PORT]"),
        ("test.com:99999/repo", "port 99999"),
        ("repo:a b", "the tag 'a b'"),
        ("repo:-tag", "the tag '-tag'"),
        ("repo:" + "t" * 129, "at most 128"),
        ("repo:tåg", "the tag"),  # \w is ASCII in the grammar
        ("repo//x", "is not a repository"),
        ("repo/", "is not a repository"),
        ("-repo", "is not a repository"),
        ("re..po", "is not a repository"),
        ("repo:", "the tag ''"),
        ("a@b@c", "is not ALGORITHM:HEX"),
        ("x\nrm -rf /", "is not a repository"),
    ],
)
def test_invalid_references(text, problem):
    with pytest.raises(BadReference) as caught:
        parse_reference(text, "--image")
    message = str(caught.value)
    assert problem in message and "\n" not in message
    assert message.startswith("--image ")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "registry"),
    [
        ("localhost:5000", Registry("localhost:5000", None)),
        ("localhost", Registry("localhost", None)),
        ("127.0.0.1:5000/sutra-ai", Registry("127.0.0.1:5000", "sutra-ai")),
        ("registry.example.com/sutra-ai", Registry("registry.example.com", "sutra-ai")),
        ("r.io/a/b_c", Registry("r.io", "a/b_c")),
        ("sutraai", Registry(None, "sutraai")),  # a Docker Hub namespace
        ("[::1]:5000/team", Registry("[::1]:5000", "team")),
    ],
)
def test_valid_registries(text, registry):
    assert parse_registry(text) == registry
    assert str(registry) == text


@pytest.mark.parametrize(
    "text",
    [
        "reg.example.com;rm -rf /",
        "http://localhost:5000",
        "registry.io/Sutra",
        "registry.io/",
        "r.io//x",
        "a b",
        "host:port",
        ":5000",
        "r.io/x:v2",  # a tag
        "r.io/x@" + SHA256,  # a digest
        "r.io:0",
        "",
        "$(reboot)",
        "`id`.example.com",
    ],
)
def test_invalid_registries_keep_push_s_wording(text):
    with pytest.raises(SutraError, match="is not a registry reference; expected HOST"):
        parse_registry(text)


def test_tags_digests_and_repositories_alone():
    assert parse_tag("v2") == "v2"
    assert parse_tag("A_1.2-b") == "A_1.2-b"
    assert parse_digest(SHA256) == SHA256
    assert parse_repository("sutra-api", "services.x.image") == "sutra-api"
    for bad in ("a b", ".v2", "-v2", "v2;rm", "t" * 129, "", "v2\n"):
        with pytest.raises(BadReference, match=r"^--tag .* is not a valid tag"):
            parse_tag(bad)
    for bad in ("sha256:abc", "md5:" + "f" * 32, "f" * 64):
        with pytest.raises(BadReference, match="is not a valid digest"):
            parse_digest(bad)
    for bad in ("Bad Name", "sutra-api:v2", "r.io:5000/x", "../x", "a;b", ""):
        with pytest.raises(BadReference, match=r"^services\.x\.image "):
            parse_repository(bad, "services.x.image")
    with pytest.raises(BadReference, match="must be lower-case"):
        parse_repository("Sutra-Api", "services.x.image")
    with pytest.raises(BadReference, match="expected a non-empty string"):
        parse_tag(["v2"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "registry",
    [
        "localhost:5000",
        "127.0.0.1:5000/sutra-ai",
        "your-registry.io/sutra-ai",
        "docker.io/sutraai",
        "r.io/a/b_c",
    ],
)
def test_valid_registries_pass_validation(registry):
    assert validate_registry(registry) == registry


@pytest.mark.parametrize(
    "registry",
    [
        "http://localhost:5000",
        "registry.io/Sutra",
        "registry.io/",
        "a b",
        "host:port",
        ":5000",
        "r.io/x:v2",
        "",
    ],
)
def test_malformed_registries_are_refused(registry):
    with pytest.raises(SutraError, match="is not a registry reference"):
        validate_registry(registry)


DIGEST_B = "sha256:" + "b" * 64


@pytest.mark.parametrize(
    ("image", "name", "tag", "digest"),
    [
        ("sutra-api:v2", "sutra-api", "v2", None),
        ("localhost:5000/sutra-ai/sutra-api", "localhost:5000/sutra-ai/sutra-api", None, None),
        ("r.io/x/sutra-api:v2@sha256:" + "a" * 64, "r.io/x/sutra-api", "v2", "sha256:" + "a" * 64),
        ("docker-pullable://r.io/a@" + DIGEST_B, "docker-pullable://r.io/a", None, DIGEST_B),
        ("r.io/a@sha256:short", "r.io/a", None, None),  # not a digest: none read
        ("sha256:" + "c" * 64, "sha256", "c" * 64, None),  # an image ID is no reference
        ("", "", None, None),
    ],
)
def test_image_parts_reads_back_without_judging(image, name, tag, digest):
    assert image_parts(image) == ImageParts(name, tag, digest)


def test_one_rule_says_which_first_component_is_a_registry():
    assert domain_and_path("Registry.io/x") == ("Registry.io", "x")
    assert domain_and_path("localhost/x") == ("localhost", "x")
    assert domain_and_path("library/x") == (None, "library/x")
    assert domain_and_path("x") == (None, "x")

import json

import pytest

from sutra_deploy.core.errors import ImageMissing
from sutra_deploy.images.explain import LayerContent, explain, merge_layers, python_packages

from .test_archive import Image, layer_tar, legacy_archive, oci_archive
from .test_sizes import FakeDocker


def test_merge_counts_overwritten_and_deleted_bytes_as_wasted():
    base = LayerContent(
        files={"usr/bin/tool": 100, "etc/conf": 10, "var/cache/apt/a.deb": 500, "var/cache/apt/b": 50}
    )
    fix = LayerContent(files={"etc/conf": 12}, deleted={"usr/bin/tool"})
    clean = LayerContent(opaque={"var/cache/apt"}, files={"var/cache/apt/lock": 0})
    final, wasted = merge_layers([base, fix, clean])
    assert final == {"etc/conf": 12, "var/cache/apt/lock": 0}
    assert wasted == 100 + 10 + 500 + 50


def test_packages_get_their_bytes_and_the_chain_that_brought_them():
    site = "opt/site"
    texts = {
        f"{site}/fastapi-0.1.dist-info/METADATA": "Name: fastapi\nVersion: 0.1\nRequires-Dist: pydantic>=2\n"
        "Requires-Dist: uvicorn; extra == 'all'\n",
        f"{site}/fastapi-0.1.dist-info/RECORD": "fastapi/__init__.py,,\nfastapi-0.1.dist-info/METADATA,,\n",
        f"{site}/pydantic-2.0.dist-info/METADATA": (
            "Name: pydantic\nVersion: 2.0\nRequires-Dist: pydantic-core==2\n"
        ),
        f"{site}/pydantic-2.0.dist-info/RECORD": "pydantic/main.py,,\n",
        f"{site}/pydantic_core-2.dist-info/METADATA": "Name: pydantic_core\nVersion: 2\n",
        f"{site}/pydantic_core-2.dist-info/RECORD": "pydantic_core/_core.so,,\n../../usr/bin/gone,,\n",
        f"{site}/uvicorn-1.dist-info/METADATA": "Name: uvicorn\nVersion: 1\n",
        f"{site}/uvicorn-1.dist-info/RECORD": "uvicorn/main.py,,\n",
    }
    final = {
        f"{site}/fastapi/__init__.py": 1000,
        f"{site}/fastapi-0.1.dist-info/METADATA": 60,
        f"{site}/pydantic/main.py": 4000,
        f"{site}/pydantic_core/_core.so": 5000,
        f"{site}/uvicorn/main.py": 700,
    }
    packages = {p.name: p for p in python_packages(final, texts, "sutra-api")}
    assert packages["pydantic_core"].chain == ("pydantic_core", "pydantic", "fastapi", "sutra-api")
    assert packages["pydantic_core"].bytes == 5000
    assert packages["fastapi"].bytes == 1060
    # uvicorn is only an extra of fastapi: it stands on its own.
    assert packages["uvicorn"].chain == ("uvicorn", "sutra-api")
    biggest = python_packages(final, texts, "x")[0]
    assert biggest.name == "pydantic_core"


def test_byte_code_compiled_after_pip_counts_for_its_package():
    """compileall's `.pyc` files are in no RECORD: in place of the source (an image that ships
    byte-code alone) or under __pycache__, they are still the package's bytes."""
    site = "opt/site"
    texts = {
        f"{site}/fastapi-0.1.dist-info/METADATA": "Name: fastapi\nVersion: 0.1\n",
        f"{site}/fastapi-0.1.dist-info/RECORD": "fastapi/__init__.py,,\nfastapi/routing.py,,\n",
        f"{site}/uvicorn-1.dist-info/METADATA": "Name: uvicorn\nVersion: 1\n",
        f"{site}/uvicorn-1.dist-info/RECORD": "uvicorn/main.py,,\n",
    }
    final = {
        f"{site}/fastapi/__init__.pyc": 900,  # sourceless: the source is gone
        f"{site}/fastapi/routing.pyc": 2000,
        f"{site}/uvicorn/main.py": 700,
        f"{site}/uvicorn/__pycache__/main.cpython-311.pyc": 800,
        f"{site}/uvicorn/__pycache__/main_extra.cpython-311.pyc": 5,  # another module's
    }
    packages = {p.name: p.bytes for p in python_packages(final, texts, "sutra-api")}
    assert packages == {"fastapi": 2900, "uvicorn": 1500}


SITE = "opt/site"
METADATA = {
    f"{SITE}/fastapi-0.1.dist-info/METADATA": b"Name: fastapi\nVersion: 0.1\nRequires-Dist: pydantic\n",
    f"{SITE}/fastapi-0.1.dist-info/RECORD": b"fastapi/__init__.py,,\n",
    f"{SITE}/pydantic-2.0.dist-info/METADATA": b"Name: pydantic\nVersion: 2.0\n",
    f"{SITE}/pydantic-2.0.dist-info/RECORD": b"pydantic/main.py,,\n",
}
BASE = layer_tar({"usr/bin/python3": b"p" * 4000, "var/cache/apt/pkgcache.bin": b"c" * 600})
PACKAGES = layer_tar(
    {f"{SITE}/fastapi/__init__.py": b"f" * 1000, f"{SITE}/pydantic/main.py": b"d" * 3000, **METADATA}
)
CLEANUP = layer_tar({}, whiteouts=["var/cache/apt/.wh.pkgcache.bin"])
HISTORY = [
    {"created_by": "/bin/sh -c #(nop) ADD file:abc in / ", "comment": "base"},
    {"created_by": "/bin/sh -c #(nop)  ENV PATH=/opt", "empty_layer": True},
    {"created_by": "COPY /opt/site /opt/site"},
    {"created_by": "RUN rm /var/cache/apt/pkgcache.bin"},
    {"comment": "Imported from -"},
]


@pytest.mark.parametrize("layout", [legacy_archive, oci_archive])
def test_explain_reads_the_saved_image_layer_by_layer(layout):
    # The base layer comes back on top, as a second identical COPY would: Docker's layout links it.
    image = Image(["sutra-api:v2"], [BASE, PACKAGES, CLEANUP, BASE], HISTORY)
    docker = FakeDocker({"sutra-api:v2": 12345}, layout([image]))
    explanation = explain(docker, "sutra-api:v2", "sutra-api")
    assert docker.saved == [["sutra-api:v2"]]
    assert explanation.size_bytes == 12345
    assert [(layer.created_by, layer.bytes) for layer in explanation.layers] == [
        ("/bin/sh -c #(nop) ADD file:abc in / ", 4600),
        ("COPY /opt/site /opt/site", 4000 + sum(len(t) for t in METADATA.values())),
        ("RUN rm /var/cache/apt/pkgcache.bin", 0),
        ("Imported from -", 4600),
    ]
    packages = {p.name: p for p in explanation.packages}
    assert packages["pydantic"].chain == ("pydantic", "fastapi", "sutra-api")
    # Its files and its own dist-info.
    assert packages["pydantic"].bytes == 3000 + sum(len(t) for p, t in METADATA.items() if "pydantic-" in p)
    # The cache deleted by the cleanup, then the whole base written again over itself.
    assert explanation.wasted_bytes == 600 + 4000
    data = json.loads(explanation.to_json())
    assert data["image"] == "sutra-api:v2" and len(data["layers"]) == 4
    assert "Wasted (overwritten or deleted by later layers): " in explanation.table()


def test_explaining_an_image_the_engine_lacks_says_to_build_it():
    with pytest.raises(ImageMissing, match="image sutra-api:v2 not found; build it"):
        explain(FakeDocker({}), "sutra-api:v2", "sutra-api")

from sutra_deploy.explain import LayerContent, merge_layers, python_packages


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

"""sutra_hybrid.embedding: similarity, determinism and ranking."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from reference_harness import HYBRID_DIR
from sutra_hybrid.embedding import DIMENSIONS, embed, embed_many, rank, tokenize


def cosine(a: str, b: str) -> float:
    return float(embed(a) @ embed(b))


def test_tokenize_lowercases_and_drops_punctuation() -> None:
    assert tokenize("The Eiffel-Tower, in PARIS!") == ["the", "eiffel", "tower", "in", "paris"]


def test_embeddings_are_unit_length() -> None:
    vector = embed("The Eiffel Tower is in Paris")
    assert vector.shape == (DIMENSIONS,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_text_without_words_embeds_to_zero() -> None:
    assert not embed("  ?! ").any()
    assert embed_many([]).shape == (0, DIMENSIONS)


def test_similar_texts_score_higher_than_unrelated_ones() -> None:
    query = "Where is the Eiffel Tower?"
    related = "The Eiffel Tower is a landmark in Paris"
    unrelated = "Photosynthesis converts sunlight into chemical energy"
    assert cosine(query, related) > cosine(query, unrelated) + 0.2
    assert cosine(related, related) == pytest.approx(1.0, abs=1e-5)


def test_trigrams_match_word_variants() -> None:
    # "towers" shares no whole word with "tower", only character trigrams.
    assert cosine("towers", "tower") > cosine("towers", "banana")


def test_embedding_is_stable_across_processes() -> None:
    """crc32, not hash(): another process with another hash seed must agree exactly."""
    code = (
        "import json; from sutra_hybrid.embedding import embed; "
        "print(json.dumps(embed('Stable hashing across replicas').tolist()))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(HYBRID_DIR)}
    output = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(output) == embed("Stable hashing across replicas").tolist()


DOCUMENTS = [
    "Photosynthesis converts sunlight into chemical energy",
    "The Eiffel Tower is in Paris",
    "Paris is the capital of France",
    "The Colosseum is in Rome",
]


def test_rank_orders_by_similarity_and_respects_limit() -> None:
    ranked = rank("Eiffel Tower Paris", DOCUMENTS, limit=2)
    assert [index for index, _ in ranked] == [1, 2]
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < score <= 1 for score in scores)
    assert all(score == round(score, 4) for score in scores)


def test_rank_drops_unrelated_documents() -> None:
    ranked = rank("Eiffel", DOCUMENTS, limit=10)
    assert ranked[0][0] == 1
    assert all(score > 0 for _, score in ranked)
    assert rank("?!", DOCUMENTS, limit=10) == []


def test_rank_handles_empty_inputs() -> None:
    assert rank("anything", [], limit=5) == []
    assert rank("Paris", DOCUMENTS, limit=0) == []


def test_rank_keeps_document_order_on_ties() -> None:
    ranked = rank("Rome", ["Rome", "Rome", "Rome"], limit=3)
    assert [index for index, _ in ranked] == [0, 1, 2]

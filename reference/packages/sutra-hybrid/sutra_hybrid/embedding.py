"""Hashing-trick text embeddings: no model weights, deterministic, numpy only.

Each text becomes a bag of features (whole words, plus character trigrams of each word so
that "cats" still resembles "cat"), hashed into a fixed number of dimensions and
L2-normalised, so the dot product of two embeddings is their cosine similarity.

The hash is zlib.crc32, not the built-in hash(): str hashes are salted per process
(PYTHONHASHSEED), which would give every replica different embeddings.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

DIMENSIONS = 512
WORD_WEIGHT = 1.0
TRIGRAM_WEIGHT = 0.5  # trigrams add fuzziness; whole words should still dominate

_WORD = re.compile(r"\w+")

Vector = npt.NDArray[np.float32]


def tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def features(text: str) -> Iterator[tuple[str, float]]:
    """(feature, weight) pairs; the prefixes keep the word "cat" and the trigram "cat" apart."""
    for word in tokenize(text):
        yield f"w:{word}", WORD_WEIGHT
        padded = f"#{word}#"
        for i in range(len(padded) - 2):
            yield f"t:{padded[i : i + 3]}", TRIGRAM_WEIGHT


def _slot(feature: str, dimensions: int) -> tuple[int, float]:
    # Signed hashing (Weinberger et al.): a second hash bit picks the sign, so collisions
    # cancel out on average instead of inflating every similarity.
    h = zlib.crc32(feature.encode("utf-8"))
    return h % dimensions, (1.0 if h & 0x80000000 else -1.0)


def embed(text: str, dimensions: int = DIMENSIONS) -> Vector:
    """Unit-length embedding of `text`; all zeros when it has no words."""
    vector = np.zeros(dimensions, dtype=np.float32)
    for feature, weight in features(text):
        index, sign = _slot(feature, dimensions)
        vector[index] += sign * weight
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def embed_many(texts: Sequence[str], dimensions: int = DIMENSIONS) -> npt.NDArray[np.float32]:
    """One row per text; shape (len(texts), dimensions) even when `texts` is empty."""
    matrix = np.zeros((len(texts), dimensions), dtype=np.float32)
    for row, text in enumerate(texts):
        matrix[row] = embed(text, dimensions)
    return matrix


def rank(
    query: str, documents: Sequence[str], limit: int, dimensions: int = DIMENSIONS
) -> list[tuple[int, float]]:
    """Indices of the `limit` documents most similar to `query`, best first, with cosine
    scores rounded to 4 decimals. Documents scoring <= 0 are unrelated and left out."""
    if limit <= 0 or not documents:
        return []
    scores = embed_many(documents, dimensions) @ embed(query, dimensions)
    # Stable sort: equal scores keep the documents' order, so results are reproducible.
    order = np.argsort(-scores, kind="stable")
    ranked: list[tuple[int, float]] = []
    for index in order[:limit]:
        score = round(float(scores[index]), 4)
        if score <= 0:
            break
        ranked.append((int(index), score))
    return ranked

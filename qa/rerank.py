"""Late interaction with the one embedding model: re-rank the top passages by how well each word of the
question finds its match, token by token, in the passage's best sentence (ColBERT's MaxSim, computed
from all-MiniLM-L6-v2's own per-wordpiece states; no second model).

Mean pooling blurs a sentence into one vector, so a long headline-and-lede passage that mentions every
name in the story can out-score the one sentence that holds "Paris" *and* "Wednesday". MaxSim keeps
each question word apart. The re-ranked passages get a bonus of min-max(MaxSim) times a weight
(qa/settings.py rerank_top, rerank_weight); benchmarks/seed_rerank.py measures the grid they were chosen
from on the seed questions and on a held-out set.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from qa.fusion import minmax


def maxsim(query: np.ndarray, passage: np.ndarray) -> float:
    """Mean over the query's token vectors of the best cosine with any of the passage's; 0 if either is empty."""
    if query.shape[0] == 0 or passage.shape[0] == 0:
        return 0.0
    return float((query @ passage.T).max(axis=1).mean())


def reranked_scores(fused: Sequence[float], late: Sequence[float], weight: float) -> np.ndarray:
    """fused + weight * min-max(late): the late score breaks near ties, a clear lead stands."""
    return np.asarray(fused, dtype=np.float32) + weight * minmax(np.asarray(late, dtype=np.float32))


class TokenCache:
    """Token vectors of sentence units by id, least recently used dropped first.

    Each unit is encoded alone, so its vectors never depend on which other units were asked for
    at the same time (int8 activations are quantised per batch): the same question always gets the
    same ranking, cached or not."""

    def __init__(self, encode: Callable[[list[str]], list[np.ndarray]], size: int = 4096) -> None:
        self._encode = encode
        self._size = size
        self._items: OrderedDict[int, np.ndarray] = OrderedDict()
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def remember_query(self, text: str, vectors: np.ndarray) -> None:
        """Keep a question's token vectors that came with its embedding (Engine.ask), for query()."""
        with self._lock:
            self._queries[text] = vectors
            while len(self._queries) > 16:
                self._queries.popitem(last=False)

    def query(self, text: str) -> np.ndarray:
        """A question's token vectors: remembered, or encoded now, alone like the units."""
        with self._lock:
            if text in self._queries:
                return self._queries[text]
        return self._encode([text])[0]

    def get(self, ids: Sequence[int], texts_of: Callable[[list[int]], dict[int, str]]) -> dict[int, np.ndarray]:
        with self._lock:
            found = {i: self._items[i] for i in ids if i in self._items}
            for i in found:
                self._items.move_to_end(i)
        missing = [i for i in dict.fromkeys(ids) if i not in found]
        if missing:
            texts = texts_of(missing)
            made = {i: self._encode([texts[i]])[0] for i in missing}
            with self._lock:
                for i, vectors in made.items():
                    self._items[i] = vectors
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
            found.update(made)
        return found

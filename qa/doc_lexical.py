"""BM25 over whole short documents, rebuilt from the catalog's passages, so a passage can carry its document's score."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from index.ranking import top_positive
from index.stores import lexical_over_texts
from index.stores.base import Catalog, Hits, PassageRecord, Within


def document_texts(
    passages: Iterable[PassageRecord], doc_ids: Sequence[int] | None = None
) -> tuple[list[int], list[str]]:
    """(document ids, texts) reassembled from passages given by document then position (Catalog.all_passages);
    overlaps are kept once. With doc_ids, only those documents."""
    ids: list[int] = []
    texts: list[str] = []
    current, parts, end = None, [], 0
    wanted = set(doc_ids) if doc_ids is not None else None
    for p in passages:
        if wanted is not None and p.doc_id not in wanted:
            continue
        if p.doc_id != current:
            if current is not None:
                ids.append(current)
                texts.append("".join(parts))
            current, parts, end = p.doc_id, [], 0
        if p.char_end <= end:
            continue
        # passages are exact spans of the document: keep only what the previous one did not cover
        parts.append(p.text[end - p.char_start :] if p.char_start < end else " " + p.text)
        end = p.char_end
    if current is not None:
        ids.append(current)
        texts.append("".join(parts))
    return ids, texts


class ShortDocumentQuery:
    """One question's scores: each passage's row score, its document's where the document is short."""

    def __init__(self, owner: ShortDocuments, text_scores: np.ndarray) -> None:
        self._owner = owner
        self._scores = text_scores[owner.text_rows]

    def top(self, k: int, within: Within = None) -> Hits:
        """The passages of short documents with the k best scores (positive), best first."""
        owner = self._owner
        allowed = None if within is None else owner.positions(owner.catalog.passages_within(within))
        rows = top_positive(np.where(owner.whole, self._scores, 0.0), k, allowed)
        return Hits(owner.passage_ids[rows], self._scores[rows])

    def score(self, ids: Sequence[int]) -> np.ndarray:
        return self._scores[self._owner.positions(ids)]


class ShortDocuments:
    """BM25 where each short document is one text and every passage of a longer document is its own
    (same analyzer and parameters as the passage index), spread onto the passages.

    In a short document (an abstract, a note) the words of a question are often split across its
    passages, so the document's BM25 says more about each passage than the passage's own does. Longer
    documents keep passage-level BM25 (the same texts as the passage index), and they stay in the
    corpus so that term statistics are the whole collection's.
    """

    def __init__(self, catalog: Catalog, whole_doc_ids: Sequence[int], settings) -> None:
        self.catalog = catalog
        passages = list(catalog.all_passages())
        doc_ids, texts = document_texts(passages, whole_doc_ids)
        row_of_doc = {d: i for i, d in enumerate(doc_ids)}
        by_id = sorted(passages, key=lambda p: p.id)
        self.passage_ids = np.asarray([p.id for p in by_id], dtype=np.int64)
        rows = []
        self.whole = np.zeros(len(by_id), dtype=bool)
        """Which passages take their whole document's score (by ascending passage id)."""
        for i, p in enumerate(by_id):
            if p.doc_id in row_of_doc:
                rows.append(row_of_doc[p.doc_id])
                self.whole[i] = True
            else:
                rows.append(len(texts))
                texts.append(p.text)
        self.text_rows = np.asarray(rows, dtype=np.int64)
        self._texts = np.arange(len(texts), dtype=np.int64)
        self.lexical = lexical_over_texts(texts, settings)

    def positions(self, ids: Sequence[int]) -> np.ndarray:
        at = np.searchsorted(self.passage_ids, np.asarray(ids, dtype=np.int64))
        if np.any(at >= self.passage_ids.shape[0]) or np.any(self.passage_ids[at] != np.asarray(ids)):
            raise KeyError("passage not in the short-document index")
        return at

    def whole_of(self, ids: Sequence[int]) -> np.ndarray:
        """Whether each passage takes its whole document's score."""
        return self.whole[self.positions(ids)]

    def query(self, text: str) -> ShortDocumentQuery:
        return ShortDocumentQuery(self, self.lexical.query(text).score(self._texts))

"""BM25 over whole documents, rebuilt from an index's chunks, so a chunk can carry its document's lexical score."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from index.lexical import LexicalIndex


def document_texts(conn, doc_ids: Sequence[int] | None = None) -> tuple[list[int], list[str]]:
    """(document ids, texts) reassembled from the stored chunks; overlaps are kept once.

    With doc_ids, only those documents."""
    ids: list[int] = []
    texts: list[str] = []
    current, parts, end = None, [], 0
    rows = conn.execute("SELECT doc_id, char_start, char_end, text FROM chunks ORDER BY doc_id, char_start, char_end")
    if doc_ids is not None:
        wanted = set(doc_ids)
        rows = (r for r in rows if r[0] in wanted)
    for doc_id, start, stop, text in rows:
        if doc_id != current:
            if current is not None:
                ids.append(current)
                texts.append("".join(parts))
            current, parts, end = doc_id, [], 0
        if stop <= end:
            continue
        # chunks are exact spans of the document: keep only what the previous one did not cover
        parts.append(text[end - start:] if start < end else " " + text)
        end = stop
    if current is not None:
        ids.append(current)
        texts.append("".join(parts))
    return ids, texts


class DocumentLexical:
    """Document-level BM25 (same analyzer and parameters as the chunk index), spread onto chunks."""

    def __init__(self, index) -> None:
        doc_ids, texts = document_texts(index.conn)
        self.lexical = LexicalIndex.build(texts, index.lexical.settings)
        row_of = {d: i for i, d in enumerate(doc_ids)}
        doc_of_chunk = dict(index.conn.execute("SELECT id, doc_id FROM chunks"))
        # for each row of the chunk BM25 index (index.bm25_ids order): the row of its document
        self.chunk_rows = np.asarray([row_of[doc_of_chunk[int(c)]] for c in index.bm25_ids], dtype=np.int64)

    def chunk_scores(self, question: str) -> np.ndarray:
        """Each chunk's document BM25 score, aligned with the chunk BM25 index's rows."""
        return self.lexical.scores(question)[self.chunk_rows]

    def scores_and_top(self, question: str, n: int, allowed_rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Chunk-aligned document scores, and the chunk rows of the n best documents (score > 0)."""
        doc_scores = self.lexical.scores(question)
        scores = doc_scores[self.chunk_rows]
        if allowed_rows is not None:
            scores = np.where(allowed_rows, scores, 0.0)
            doc_scores = np.zeros_like(doc_scores)
            np.maximum.at(doc_scores, self.chunk_rows, scores)
        from qa.engine import top_rows

        best = top_rows(doc_scores, n)
        best = best[doc_scores[best] > 0]
        return scores, np.flatnonzero(np.isin(self.chunk_rows, best))


class ShortDocumentLexical:
    """BM25 where a short document is one text and every chunk of a longer one is its own text.

    In a short document (an abstract, a note) the words of a question are often split across its
    chunks, so the document's BM25 says more about each chunk than the chunk's own does. Longer
    documents keep chunk-level BM25 (the same texts as the chunk index), and they stay in the
    corpus so that term statistics are the whole collection's.
    """

    def __init__(self, index, short_doc_ids: Sequence[int]) -> None:
        short_ids, short_texts = document_texts(index.conn, short_doc_ids)
        doc_of_chunk = dict(index.conn.execute("SELECT id, doc_id FROM chunks"))
        text_of_chunk = dict(index.conn.execute("SELECT id, text FROM chunks"))
        row_of_doc = {d: i for i, d in enumerate(short_ids)}
        texts = list(short_texts)
        rows = []
        self.short = np.zeros(len(index.bm25_ids), dtype=bool)
        for i, c in enumerate(index.bm25_ids):
            doc = doc_of_chunk[int(c)]
            if doc in row_of_doc:
                rows.append(row_of_doc[doc])
                self.short[i] = True
            else:
                rows.append(len(texts))
                texts.append(text_of_chunk[int(c)])
        self.lexical = LexicalIndex.build(texts, index.lexical.settings)
        self.chunk_rows = np.asarray(rows, dtype=np.int64)

    def chunk_scores(self, question: str) -> np.ndarray:
        """Each chunk's score (its document's when the document is short), aligned with the chunk BM25 index's rows."""
        return self.lexical.scores(question)[self.chunk_rows]

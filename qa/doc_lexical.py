"""BM25 over whole documents, rebuilt from an index's chunks, so a chunk can carry its document's lexical score."""

from __future__ import annotations

from collections.abc import Sequence

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
        parts.append(text[end - start :] if start < end else " " + text)
        end = stop
    if current is not None:
        ids.append(current)
        texts.append("".join(parts))
    return ids, texts


class DocumentLexical:
    """BM25 where a document is one text, spread onto its chunks (same analyzer and parameters as the chunk index).

    With whole_doc_ids, only those documents are one text each and every chunk of any other document
    is its own text: in a short document (an abstract, a note) the words of a question are often
    split across its chunks, so the document's BM25 says more about each chunk than the chunk's own
    does. Longer documents then keep chunk-level BM25 (the same texts as the chunk index), and they
    stay in the corpus so that term statistics are the whole collection's.
    """

    def __init__(self, index, whole_doc_ids: Sequence[int] | None = None) -> None:
        doc_ids, texts = document_texts(index.conn, whole_doc_ids)
        row_of_doc = {d: i for i, d in enumerate(doc_ids)}
        rows = []
        # for each row of the chunk BM25 index (index.bm25_ids order): the row of its text
        self.whole = np.zeros(len(index.bm25_ids), dtype=bool)
        """Which chunk rows take their whole document's score."""
        chunks = {cid: (doc, text) for cid, doc, text in index.conn.execute("SELECT id, doc_id, text FROM chunks")}
        for i, c in enumerate(index.bm25_ids):
            doc, text = chunks[int(c)]
            if doc in row_of_doc:
                rows.append(row_of_doc[doc])
                self.whole[i] = True
            else:
                rows.append(len(texts))
                texts.append(text)
        self.lexical = LexicalIndex.build(texts, index.lexical.settings)
        self.chunk_rows = np.asarray(rows, dtype=np.int64)

    def chunk_scores(self, question: str) -> np.ndarray:
        """Each chunk's score (its document's where whole), aligned with the chunk BM25 index's rows."""
        return self.lexical.scores(question)[self.chunk_rows]

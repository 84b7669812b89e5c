"""Stores chosen by location: a folder (the embedded store) or a URL whose scheme names a registered store."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

from index.errors import InputError
from index.stores.base import LexicalStore, Store

STORES = {
    "file": "index.stores.embedded:EmbeddedStore",
    "postgresql": "index.stores.postgres:PostgresStore",
    "postgres": "index.stores.postgres:PostgresStore",
}
"""URL scheme -> "module:class" of its store, imported only when chosen (a server store's client
library loads only for the store that needs it)."""


def open_store(location: str | Path) -> Store:
    """The store at location: a folder path (or file://), else the store registered for the URL's scheme."""
    text = str(location)
    scheme, sep, rest = text.partition("://")
    if not sep or "/" in scheme or "\\" in scheme:
        return _store_class("file")(Path(text))
    if scheme == "file":
        return _store_class("file")(Path(rest))
    if scheme not in STORES:
        raise InputError(
            f"No store for '{scheme}://' (in {text[:80]}).",
            f"Give a folder, or a URL starting with one of: {', '.join(s + '://' for s in sorted(STORES))}.",
        )
    return _store_class(scheme)(text)


def _store_class(scheme: str):
    module, _, name = STORES[scheme].partition(":")
    return getattr(importlib.import_module(module), name)


def lexical_over_texts(texts: Sequence[str], settings) -> LexicalStore:
    """BM25 over texts held in memory, rows keyed 0..len(texts)-1: for signals derived from the catalog
    (qa/doc_lexical.py), with the analyzer and parameters of `settings`."""
    from index.stores.embedded import Bm25Lexical  # deferred: an implementation loads only when it is used

    return Bm25Lexical.over_texts(texts, settings)

"""The store contract (index/stores/base.py): every store implementation passes the same tests.

A store joins by adding a parameter to STORES that gives a fresh, empty location for it (as txtai's
test/python/testann/ runs one suite over each ANN backend). Everything here goes through the seam:
open_store, the builder, Snapshot, StoreUpdate; nothing reads a store's own files.
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from conftest import write_corpus
from fakes import HashingEmbedder

from index.builder import build_index
from index.chunker import ChunkSettings
from index.errors import IndexLockedError, IndexMismatchError, IndexMissingError
from index.lexical import BM25Settings
from index.manifest import BuildInfo
from index.readers import EXTRACTORS
from index.stores import open_store
from index.stores.base import (
    Catalog,
    CatalogEditor,
    Hits,
    LexicalQuery,
    LexicalStore,
    Snapshot,
    Store,
    StoreUpdate,
    VectorStore,
)
from qa.engine import Engine

FILES = {
    "harbour.txt": "The harbour master is Rita Borg. Ferries leave the harbour at dawn.",
    "orchard.md": "# Orchards\n\nApple trees bloom in April. The orchard sells cider in autumn.",
    "comets.txt": "Comets have icy nuclei. A comet's tail points away from the sun.",
    "violins.txt": "Violins have four strings. A luthier carves violins from spruce and maple.",
}


@pytest.fixture(params=["embedded", "postgres"])
def location(request, tmp_path) -> str:
    """A fresh, empty location of each store implementation."""
    if request.param == "embedded":
        return str(tmp_path / "index")
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    raise AssertionError(request.param)


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "docs", dict(FILES))


@pytest.fixture
def built(location, corpus, fake_embedder) -> Store:
    build_index([corpus], location, fake_embedder)
    return open_store(location)


def _snapshot(store: Store) -> Snapshot:
    snapshot = store.open()
    snapshot.warm()
    return snapshot


def _doc_of_passages(snapshot: Snapshot, ids) -> set[str]:
    return set(snapshot.catalog.sources_of([int(i) for i in ids]).values())


def _doc_of_units(snapshot: Snapshot, ids) -> set[str]:
    passages = [p for ps in snapshot.catalog.passages_of([int(i) for i in ids]) for p in ps]
    return _doc_of_passages(snapshot, passages)


def _assert_ranked(hits: Hits) -> None:
    """Best first; equal scores by ascending id."""
    pairs = list(zip(hits.scores.tolist(), hits.ids.tolist()))
    assert pairs == sorted(pairs, key=lambda p: (-p[0], p[1]))


def test_a_missing_index_is_reported_with_how_to_build_it(location):
    store = open_store(location)
    assert store.manifest() is None
    with pytest.raises(IndexMissingError, match="qa index"):
        store.open()


def test_the_store_provides_every_protocol(built, fake_embedder):
    assert isinstance(built, Store)
    snapshot = _snapshot(built)
    try:
        assert isinstance(snapshot, Snapshot) and isinstance(snapshot.catalog, Catalog)
        assert isinstance(snapshot.vectors, VectorStore)
        for lexical in (snapshot.passage_lexical, snapshot.unit_lexical):
            assert isinstance(lexical, LexicalStore) and isinstance(lexical.query("harbour"), LexicalQuery)
    finally:
        snapshot.close()
    with built.update() as update:
        assert isinstance(update, StoreUpdate)
        update.start(True, BM25Settings())
        assert isinstance(update.catalog(), CatalogEditor)


def test_build_stores_every_document_its_passages_units_and_vectors(built, corpus, fake_embedder):
    snapshot = _snapshot(built)
    try:
        catalog = snapshot.catalog
        assert catalog.sources() == sorted(FILES)
        assert catalog.count_documents() == len(FILES) == built.manifest().n_documents
        assert snapshot.manifest.model_fingerprint == fake_embedder.fingerprint()
        passages = list(catalog.all_passages())
        assert len(passages) == catalog.count_passages() == snapshot.n_chunks == snapshot.passage_lexical.num_docs
        for p in passages:
            assert FILES[p.source][p.char_start : p.char_end] == p.text
        assert catalog.passages([p.id for p in passages]) == {p.id: p for p in passages}
        units = list(catalog.all_units())
        assert len(units) == snapshot.vectors.count == snapshot.unit_lexical.num_docs
        assert [u.id for u in units] == sorted(u.id for u in units)
        by_doc = {d.id: d.source for d in catalog.documents()}
        for unit in units:
            assert FILES[by_doc[unit.doc_id]][unit.char_start : unit.char_end] == unit.text
        vectors = snapshot.vectors.vectors([u.id for u in units])
        np.testing.assert_allclose(vectors, fake_embedder.embed([u.text for u in units]), atol=1e-6)
        # every passage holds units, and the links go both ways
        members = catalog.units_of([p.id for p in passages])
        assert all(members)
        for p, unit_ids in zip(passages, members):
            assert all(p.id in links for links in catalog.passages_of(unit_ids))
        assert catalog.passage_counts() == {s: sum(p.source == s for p in passages) for s in sorted(FILES)}
    finally:
        snapshot.close()


def test_search_without_a_filter_finds_the_passage_and_scores_any_id(built, fake_embedder):
    snapshot = _snapshot(built)
    try:
        qvec = fake_embedder.embed(["a luthier carves violins"])[0]
        dense = snapshot.vectors.search(qvec, 3)
        _assert_ranked(dense)
        assert _doc_of_units(snapshot, dense.ids[:1]) == {"violins.txt"}
        np.testing.assert_allclose(snapshot.vectors.score(qvec, dense.ids), dense.scores, atol=1e-6)

        query = snapshot.passage_lexical.query("luthier spruce")
        top = query.top(10)
        _assert_ranked(top)
        assert top.ids.size and (top.scores > 0).all()
        assert _doc_of_passages(snapshot, top.ids) == {"violins.txt"}
        every = [p.id for p in snapshot.catalog.all_passages()]
        scores = query.score(every)
        assert scores.dtype == np.float32
        assert {i for i, s in zip(every, scores) if s > 0} == set(top.ids.tolist())
        np.testing.assert_array_equal(query.score(top.ids), top.scores)

        units = snapshot.unit_lexical.query("cider autumn").top(5)
        assert _doc_of_units(snapshot, units.ids) == {"orchard.md"}
        assert snapshot.unit_lexical.document_frequency("cider") == 1
        assert snapshot.unit_lexical.document_frequency("zeppelin") == 0
        idf = snapshot.unit_lexical.idf(["cider", "zeppelin"])
        assert idf["zeppelin"] > idf["cider"] > 0
        assert snapshot.passage_lexical.query("zeppelin").top(5).ids.size == 0
    finally:
        snapshot.close()


def test_search_with_a_document_filter_stays_inside_those_documents(built, fake_embedder):
    snapshot = _snapshot(built)
    try:
        ids = snapshot.catalog.document_ids(["comets.txt", "harbour.txt", "not-indexed.txt"])
        assert set(ids) == {"comets.txt", "harbour.txt"}
        within = frozenset(ids.values())
        qvec = fake_embedder.embed(["a luthier carves violins"])[0]
        dense = snapshot.vectors.search(qvec, 10, within)
        assert dense.ids.size and _doc_of_units(snapshot, dense.ids) <= {"comets.txt", "harbour.txt"}
        assert snapshot.passage_lexical.query("violins luthier").top(10, within).ids.size == 0
        harbour = snapshot.passage_lexical.query("harbour ferries").top(10, within)
        assert _doc_of_passages(snapshot, harbour.ids) == {"harbour.txt"}
        units = snapshot.unit_lexical.query("comet tail harbour").top(10, frozenset([ids["comets.txt"]]))
        assert units.ids.size and _doc_of_units(snapshot, units.ids) == {"comets.txt"}
        passages = snapshot.catalog.passages_within(within)
        assert _doc_of_passages(snapshot, passages) == {"comets.txt", "harbour.txt"}
    finally:
        snapshot.close()


def test_an_update_replaces_changed_documents_and_deletes_removed_ones(built, corpus, fake_embedder):
    before = _snapshot(built)
    try:
        old_violins = [p.id for p in before.catalog.all_passages() if p.source == "violins.txt"]
        (corpus / "violins.txt").write_text("Violins are now made of carbon fibre by a zeppelin maker.", "utf-8")
        (corpus / "comets.txt").unlink()
        (corpus / "tides.txt").write_text("Tides rise twice a day at the harbour wall.", "utf-8")
        report = build_index([corpus], built.location, fake_embedder)
        assert (report.new, report.changed, report.removed, report.unchanged) == (1, 1, 1, 2)
        after = _snapshot(built)
        try:
            assert after.catalog.sources() == ["harbour.txt", "orchard.md", "tides.txt", "violins.txt"]
            assert _doc_of_passages(after, after.passage_lexical.query("zeppelin").top(5).ids) == {"violins.txt"}
            assert after.passage_lexical.query("comet nuclei").top(5).ids.size == 0
            assert not set(old_violins) & {p.id for p in after.catalog.all_passages()}
            units = list(after.catalog.all_units())
            assert after.vectors.count == len(units) == after.unit_lexical.num_docs
            assert after.passage_lexical.num_docs == after.catalog.count_passages()
            # the reader opened before the update still sees its own version, whole
            assert before.catalog.sources() == sorted(FILES)
            assert _doc_of_passages(before, before.passage_lexical.query("comet nuclei").top(5).ids) == {"comets.txt"}
        finally:
            after.close()
    finally:
        before.close()
    assert build_index([corpus], built.location, fake_embedder).unchanged == 4


def _build_info(embedder, store: Store) -> BuildInfo:
    previous = store.manifest()
    return BuildInfo(
        model=embedder.name,
        model_fingerprint=embedder.fingerprint(),
        dim=embedder.dim,
        backend=embedder.backend,
        chunking=asdict(ChunkSettings()),
        bm25=asdict(BM25Settings()),
        roots=previous.roots,
        root=previous.root,
        extractors=dict(EXTRACTORS),
    )


def _delete_in_one_update(store: Store, source: str, embedder, commit: bool) -> None:
    """Delete one document through StoreUpdate itself (the builder's steps, nothing added)."""
    with store.read_catalog() as (catalog, _):
        doc_id = catalog.document_ids([source])[source]
    with store.update() as update:
        update.start(True, BM25Settings())
        update.catalog().delete_documents([doc_id])
        update.texts_written()
        update.add_vectors(np.zeros(0, dtype=np.int64), np.zeros((0, embedder.dim), dtype=np.float32))
        manifest = update.finish(_build_info(embedder, store))
        assert manifest.n_documents == len(FILES) - 1
        if commit:
            update.commit()


def test_delete_by_document_in_one_transaction(built, fake_embedder):
    _delete_in_one_update(built, "orchard.md", fake_embedder, commit=True)
    snapshot = _snapshot(built)
    try:
        assert "orchard.md" not in snapshot.catalog.sources()
        assert snapshot.passage_lexical.query("cider apple").top(5).ids.size == 0
        assert snapshot.unit_lexical.query("cider apple").top(5).ids.size == 0
        assert snapshot.vectors.count == len(list(snapshot.catalog.all_units()))
    finally:
        snapshot.close()


def test_an_update_left_without_commit_changes_nothing(built, fake_embedder):
    manifest = built.manifest()
    _delete_in_one_update(built, "orchard.md", fake_embedder, commit=False)
    assert built.manifest() == manifest
    with built.read_catalog() as (catalog, _):
        assert "orchard.md" in catalog.sources()


def test_a_fingerprint_mismatch_is_refused_with_the_rebuild_command(built, corpus):
    class OtherModel(HashingEmbedder):
        def fingerprint(self) -> str:
            return "another-model"

    with pytest.raises(IndexMismatchError) as err:
        Engine.open(built.location, OtherModel())
    assert "another-model" in str(err.value) and "qa index --rebuild" in err.value.one_line()
    report = build_index([corpus], built.location, OtherModel())  # the builder rebuilds instead
    assert report.rebuilt_because is not None and "another-model" in report.rebuilt_because
    assert built.manifest().model_fingerprint == "another-model"


def test_a_crash_in_the_middle_of_an_update_leaves_the_live_version_whole(built, corpus, fake_embedder):
    class Exploding(HashingEmbedder):
        def embed(self, texts):
            raise RuntimeError("embedder exploded mid-update")

    engine = Engine.open(built.location, fake_embedder)
    try:
        expected = [(p.citation.source, p.citation.text) for p in engine.search("harbour master", k=3)]
    finally:
        engine.close()
    manifest = built.manifest()
    (corpus / "harbour.txt").write_text("The harbour master is now Tomas Vella.", "utf-8")
    with pytest.raises(RuntimeError, match="exploded"):
        build_index([corpus], built.location, Exploding())
    assert built.manifest() == manifest
    engine = Engine.open(built.location, fake_embedder)
    try:
        assert [(p.citation.source, p.citation.text) for p in engine.search("harbour master", k=3)] == expected
    finally:
        engine.close()
    report = build_index([corpus], built.location, fake_embedder)  # the next writer picks up from there
    assert report.changed == 1
    with built.read_catalog() as (catalog, _):
        assert any("Tomas Vella" in p.text for p in catalog.all_passages())


def test_a_reader_during_a_write_sees_the_old_version_and_a_second_writer_waits(built, corpus, fake_embedder):
    inside, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    class Pausing(HashingEmbedder):
        def embed(self, texts):
            inside.set()
            assert release.wait(30)
            return super().embed(texts)

    (corpus / "tides.txt").write_text("Tides rise twice a day at the harbour wall.", "utf-8")

    def write() -> None:
        try:
            build_index([corpus], built.location, Pausing())
        except BaseException as exc:  # re-raised by the assertions below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert inside.wait(30), "the writer never reached the embedding"
        with pytest.raises(IndexLockedError):
            with built.update():
                pass
        reader = _snapshot(built)
        try:
            assert "tides.txt" not in reader.catalog.sources()
            assert reader.passage_lexical.query("tides wall").top(5).ids.size == 0
        finally:
            release.set()
            writer.join(60)
        assert not errors and not writer.is_alive()
        assert "tides.txt" not in reader.catalog.sources()  # an open reader keeps its version
        reader.close()
    finally:
        release.set()
        writer.join(60)
    fresh = _snapshot(built)
    try:
        assert "tides.txt" in fresh.catalog.sources()
        assert _doc_of_passages(fresh, fresh.passage_lexical.query("tides wall").top(5).ids) == {"tides.txt"}
    finally:
        fresh.close()


def test_a_store_is_chosen_by_location(tmp_path):
    from index.errors import InputError
    from index.stores.embedded import EmbeddedStore

    assert isinstance(open_store(tmp_path / "idx"), EmbeddedStore)
    assert open_store(f"file://{tmp_path}/idx").location == str(tmp_path / "idx")
    with pytest.raises(InputError, match="No store for 'nosuch://'") as err:
        open_store("nosuch://host/db")
    assert "file://" in err.value.one_line()

"""The real all-MiniLM-L6-v2 over seeds/: qa index -> qa ask --json with verified citations, unicode, token limit."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest
from conftest import DATA, SEEDS, WEB_PAGE, make_docx, make_pdf

from index import store
from index.chunker import ChunkSettings, chunk_text, segment_text
from index.normalize import squash
from index.stores import open_store
from qa.questions import load_questions
from qa.results import Answer

pytestmark = pytest.mark.slow

NBSP = "\u00a0"


def seed_text(source: str) -> str:
    return (SEEDS / source).read_bytes().decode("utf-8")


def assert_exact(c: dict, folder: Path = SEEDS) -> None:
    text = (folder / c["source"]).read_bytes().decode("utf-8")
    assert c["text"] == text[c["char_start"] : c["char_end"]]
    assert c["line_start"] == text.count("\n", 0, c["char_start"]) + 1
    assert c["line_end"] == text.count("\n", 0, c["char_end"] - 1) + 1


@pytest.fixture
def real_cli(monkeypatch, capsys, real_embedder):
    """Run qa.cli.main in this process with the session's already-loaded model."""
    import qa.engine
    import qa.service
    from qa.cli import main

    monkeypatch.setattr(qa.service, "make_embedder", lambda backend="torch": real_embedder)
    monkeypatch.setattr(qa.engine, "make_embedder", lambda backend="torch": real_embedder)

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["qa", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_qa_index_then_ask_json_gives_verified_citations(real_cli, tmp_path, real_embedder):
    index_dir = tmp_path / "idx"
    code, _, err = real_cli("index", str(SEEDS), "--index-dir", str(index_dir))
    assert code == 0, err
    assert "2 new, 0 changed, 0 unchanged, 0 removed, 0 skipped" in err
    manifest = store.read_manifest(index_dir)
    assert manifest.model == "sentence-transformers/all-MiniLM-L6-v2" and manifest.backend == "torch"
    assert manifest.dim == 384 and manifest.model_fingerprint == real_embedder.fingerprint()

    code, _, err = real_cli("index", str(SEEDS), "--index-dir", str(index_dir))
    assert code == 0 and "0 new, 0 changed, 2 unchanged, 0 removed, 0 skipped" in err

    question = "Who did Hollande meet in Washington?"
    code, out, err = real_cli("ask", question, "--json", "-k", "5", "--index-dir", str(index_dir))
    assert code == 0, err
    payload = json.loads(out)
    assert payload["question"] == question and payload["found"] is True
    assert_exact(payload["answer"])
    assert any("Obama will meet with his French counterpart" in p["text"] for p in payload["passages"][:3])
    assert 0.5 <= payload["answer"]["confidence"] <= 1.0
    assert len(payload["passages"]) == 5
    for p in payload["passages"]:
        assert_exact(p)
        assert p["source"] in {"000_3f65fe5b4edd20f1.txt", "002_c6b6b51f87ff079e.txt"}
        for other in p["also_in"]:
            assert_exact(other)


def test_every_seed_question_gets_exact_citations(seed_engine):
    """Whatever is retrieved, each quote is the file slice it claims to be, on the lines it names.

    Passages for every question (cheap: one query embedding each); full answers for a sample,
    since sentence scoring embeds every sentence of the top passages.
    """
    questions = load_questions(DATA / "seed_questions.jsonl")
    vectors = seed_engine.embedder.embed([q.question for q in questions])  # one batch, not one call each
    for q, qvec in zip(questions, vectors):
        for mode in ("hybrid", "dense", "bm25"):
            passages = seed_engine.search(q.question, k=5, mode=mode, qvec=qvec)
            payload = Answer(q.question, False, None, tuple(passages)).to_json()
            for p in payload["passages"]:
                assert not p["stale"]
                assert_exact(p)
                for other in p["also_in"]:
                    assert_exact(other)
    for q in questions[::10]:
        payload = seed_engine.ask(q.question, k=3).to_json()
        if payload["found"]:
            assert_exact(payload["answer"])


def test_straight_quotes_find_curly_quoted_evidence_and_display_keeps_them(seed_engine):
    answer = seed_engine.ask('What did Obama and Hollande agree to "intensify"?', k=3)
    top = answer.passages[0].citation
    assert top.source == "002_c6b6b51f87ff079e.txt"
    assert "agreed to “intensify” strikes" in top.text
    assert answer.found and "“intensify”" in answer.answer.citation.text
    apostrophe = seed_engine.search("Why has the US been skeptical about Putin's intentions in Syria?", k=3)
    hit = next(p for p in apostrophe if squash("Putin's intentions") in squash(p.citation.text))
    assert "Putin’s intentions" in hit.citation.text and hit.rank <= 2


def test_normal_spaces_find_nbsp_evidence_and_display_keeps_them(seed_engine):
    evidence = "Hollande is likely to leave Washington without a firm support"
    answer = seed_engine.ask("Is Hollande likely to leave Washington without firm support for his message?", k=3)
    top = answer.passages[0].citation
    assert squash(evidence) in squash(top.text)
    assert f"Hollande{NBSP}is likely" in top.text, "NBSP shown as it is in the file"
    assert answer.found and f"Hollande{NBSP}is likely" in answer.answer.citation.text
    assert_exact(answer.to_json()["answer"])


def test_seed_index_chunks_fit_the_real_tokenizer(seed_index_dir, real_embedder):
    with open_store(seed_index_dir).read_catalog() as (catalog, manifest):
        limit = manifest.chunking["max_tokens"]
        texts = [p.text for p in catalog.all_passages()]
        texts += [u.text for u in catalog.all_units()]  # sentence units: each is embedded on its own
    assert texts
    for offs in real_embedder.offsets(texts):
        assert len(offs) <= limit <= real_embedder.max_tokens


def _assert_within_model_limit(text: str, embedder, settings: ChunkSettings) -> list:
    chunks = chunk_text(text, embedder, settings, embedder.max_tokens)
    assert chunks
    counts = [len(o) for o in embedder.offsets([c.text for c in chunks])]
    with_specials = embedder.tokenizer([c.text for c in chunks], truncation=False, verbose=False)["input_ids"]
    for c, n, ids in zip(chunks, counts, with_specials):
        assert c.text == text[c.char_start : c.char_end]
        assert n <= settings.max_tokens <= embedder.max_tokens
        assert len(ids) <= embedder._model.max_seq_length, "the encoder would silently drop the rest"
    # What gets embedded (sentence units or whole chunks) fits too.
    units = segment_text(text, embedder, settings, embedder.max_tokens).units
    for offs in embedder.offsets([text[u.char_start : u.char_end] for u in units]):
        assert len(offs) <= settings.max_tokens
    # Nothing is lost: every word of the text is inside some chunk.
    covered = [(c.char_start, c.char_end) for c in chunks]
    for s, e in embedder.offsets([text])[0]:
        assert any(a <= s and e <= b for a, b in covered)
    return chunks


def test_model_limit_is_254_wordpieces(real_embedder):
    real_embedder.load()
    assert real_embedder._model.max_seq_length == 256
    assert real_embedder.max_tokens == 254


def test_5000_word_paragraph_never_exceeds_the_model_limit(real_embedder):
    rng = random.Random(7)
    vocabulary = seed_text("000_3f65fe5b4edd20f1.txt").split() + seed_text("002_c6b6b51f87ff079e.txt").split()
    words = [rng.choice(vocabulary) for _ in range(5000)]
    # Sentences of random length, all on one line: one paragraph.
    paragraph = " ".join(w + ("." if rng.random() < 0.03 else "") for w in words)
    assert "\n" not in paragraph and len(paragraph.split()) == 5000
    chunks = _assert_within_model_limit(paragraph, real_embedder, ChunkSettings(max_tokens=254, overlap_tokens=32))
    assert max(c.n_tokens for c in chunks) > 200, "chunks use the room they have"


def test_long_line_without_punctuation_never_exceeds_the_model_limit(real_embedder):
    rng = random.Random(11)
    vocabulary = [w for w in seed_text("002_c6b6b51f87ff079e.txt").split() if w.isalpha()]
    line = " ".join(rng.choice(vocabulary) for _ in range(3000))
    assert not any(ch in line for ch in ".!?\n")
    _assert_within_model_limit(line, real_embedder, ChunkSettings(max_tokens=254, overlap_tokens=32))
    _assert_within_model_limit(line, real_embedder, ChunkSettings(max_tokens=128, overlap_tokens=32))


def test_glued_and_unusual_text_never_exceeds_the_model_limit(real_embedder):
    rng = random.Random(3)
    text = "".join(rng.choice("ab1-_.,;üé😀\u00a0“”’ ") for _ in range(6000)) + " " + "x" * 400 + " " + "中文字符" * 300
    _assert_within_model_limit(text, real_embedder, ChunkSettings(max_tokens=254, overlap_tokens=16))


def test_default_backend_end_to_end_without_torch(onnx_home, tmp_path):
    """The shipped default (fp32 ONNX, run by onnxruntime) indexes and answers over seeds/ in a child
    process, never importing torch, with citations that are exact slices of the files."""
    import os
    import subprocess

    from conftest import REPO

    from index.backends import DEFAULT_BACKEND

    index_dir = tmp_path / "idx"
    script = (
        "import sys, runpy\n"
        "sys.argv = ['qa', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('qa', run_name='__main__')\n"
        "finally:\n"
        "    heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]\n"
        "    print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    env = {**os.environ, "QA_HOME": str(tmp_path / "home")}
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "ask",
            "Who did Hollande meet in Washington?",
            "--json",
            "-c",
            str(SEEDS),
            "--index-dir",
            str(index_dir),
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "HEAVY=\n" in run.stderr or run.stderr.rstrip().endswith("HEAVY="), run.stderr[-500:]
    assert store.read_manifest(index_dir).backend == DEFAULT_BACKEND == "onnx"
    reply = json.loads(run.stdout)
    assert reply["found"] and reply["passages"]
    for passage in reply["passages"]:
        assert_exact(passage)
    assert any("Obama" in p["text"] for p in reply["passages"][:3])


def _answered_from_extracted_text(
    real_cli, tmp_path, name: str, content: bytes, question: str, expected: str, changed: bytes, quoted: str = "answer"
) -> dict:
    """Index a folder holding one file whose text is extracted (PDF, Word), ask, and check that the answer
    quotes that file's extracted text at its offsets and lines; then change the file: its passages are
    flagged stale. Returns the first answer. quoted="passage": the cited passage holding `expected` is checked
    instead of the answer sentence (the extraction under test, not the answer model's choice)."""
    from index.readers import read_text

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text("Ferries to the islands leave at noon.\n", encoding="utf-8")
    path = docs / name
    path.write_bytes(content)
    index_dir = tmp_path / "idx"
    assert real_cli("index", str(docs), "--index-dir", str(index_dir))[0] == 0
    code, out, err = real_cli("ask", question, "--json", "--index-dir", str(index_dir))
    assert code == 0, err
    payload = json.loads(out)
    if quoted == "answer":
        answer = payload["answer"]
        assert payload["found"] and answer["source"] == name and expected in answer["text"]
    else:
        answer = next(p for p in payload["passages"] if p["source"] == name and expected in p["text"])
    text = read_text(path)[0]
    assert (
        answer["text"] == text[answer["char_start"] : answer["char_end"]]
        and answer["line_start"] == text.count("\n", 0, answer["char_start"]) + 1
    )
    assert not any(p["stale"] for p in payload["passages"])
    path.write_bytes(changed)
    later = json.loads(real_cli("ask", question, "--json", "--index-dir", str(index_dir))[1])
    assert any(p["stale"] for p in later["passages"] if p["source"] == name), (
        "a changed file is flagged, never quoted wrongly"
    )
    return answer


def test_a_pdf_is_answered_and_cited_into_its_text_layer(real_cli, tmp_path):
    answer = _answered_from_extracted_text(
        real_cli,
        tmp_path,
        "zeppelins.pdf",
        make_pdf(
            [
                ["Notes on zeppelins.", "The Hindenburg burned at Lakehurst, New Jersey, on 6 May 1937."],
                ["Thirty-six people died in the fire.", "Zeppelins were named after Count Ferdinand von Zeppelin."],
            ]
        ),
        "Who were zeppelins named after?",
        "Count Ferdinand von Zeppelin",
        make_pdf(
            [
                ["A different first page."],
                ["Thirty-six people died in the fire.", "Zeppelins were named after Count Ferdinand von Zeppelin."],
            ]
        ),
    )
    assert answer["page"] == 2, "the answer sentence is on the second page"


def test_a_pdf_s_running_heads_and_feet_stay_out_of_its_passages(real_cli, tmp_path):
    pages = [
        [
            "ACME Harbour Report 2025",
            f"In quarter {i} the harbour handled {i * 110} ships.",
            "Boats arriving after dark must call the harbour master.",
            f"Page {i} of 4",
        ]
        for i in range(1, 5)
    ]
    _answered_from_extracted_text(
        real_cli,
        tmp_path,
        "report.pdf",
        make_pdf(pages),
        "How many ships did the harbour handle in quarter 3?",
        "330 ships",
        make_pdf(pages[::-1]),
    )
    payload = json.loads(
        real_cli("ask", "What does page 2 of the report say?", "--json", "--index-dir", str(tmp_path / "idx"))[1]
    )
    assert payload["passages"] and not any("ACME" in p["text"] or "of 4" in p["text"] for p in payload["passages"])


def test_a_word_document_is_answered_and_cited_into_its_text(real_cli, tmp_path):
    answer = _answered_from_extracted_text(
        real_cli,
        tmp_path,
        "harbour.docx",
        make_docx(
            [
                "# Harbour rules",
                "Boats arriving after dark must call the harbour master on channel 12.",
                [["Berth", "Fee per night"], ["A1", "40 EUR"]],
                "The harbour master is Ingrid Solberg.",
            ]
        ),
        "Who is the harbour master?",
        "Ingrid Solberg",
        make_docx(["A new first line.", "The harbour master is Ingrid Solberg."]),
        quoted="passage",
    )
    assert answer["page"] is None, "a Word document has no pages until it is printed"


def test_a_table_row_answers_with_its_cells_named_by_the_header(real_cli, tmp_path):
    """HTML tables used to give one line per cell: "What is the fee per night at berth B2?" was answered "Fee per
    night" (the header cell, 0.90) and "How much is a night at berth A1?" was not found. A row is now one line
    whose cells are named by the header row (index/tables.py)."""
    fees = (
        "<h1>Harbour fees</h1><p>Visiting boats pay per night at the harbour office.</p><table>"
        "<tr><th>Berth</th><th>Fee per night</th><th>Max length</th></tr>"
        "<tr><td>A1</td><td>40 EUR</td><td>12 m</td></tr><tr><td>B2</td><td>{}</td><td>18 m</td></tr></table>"
    )
    answer = _answered_from_extracted_text(
        real_cli,
        tmp_path,
        "fees.html",
        fees.format("55 EUR").encode(),
        "What is the fee per night at berth B2?",
        "Berth: B2 | Fee per night: 55 EUR",
        fees.format("60 EUR").encode(),
    )
    assert answer["text"] == "| Berth: B2 | Fee per night: 55 EUR | Max length: 18 m |"
    payload = json.loads(
        real_cli("ask", "How much is a night at berth A1?", "--json", "--index-dir", str(tmp_path / "idx"))[1]
    )
    assert (
        payload["passages"][0]["source"] == "fees.html"
        and "Berth: A1 | Fee per night: 40 EUR" in payload["passages"][0]["text"]
    )
    # "how long can ... be" wants a length ("12 m"): it used to want a time and found none (0.07)
    assert (
        real_cli("index", str(tmp_path / "docs"), "--index-dir", str(tmp_path / "idx"))[0] == 0
    )  # the helper changed B2's fee
    payload = json.loads(
        real_cli("ask", "How long can a boat at berth A1 be?", "--json", "--index-dir", str(tmp_path / "idx"))[1]
    )
    assert payload["found"] and payload["answer"]["text"] == "| Berth: A1 | Fee per night: 40 EUR | Max length: 12 m |"


def test_a_definition_list_answers_with_the_definition_not_the_term(real_cli, tmp_path):
    """A glossary page (<dl>): "What is a bollard?" was answered "Bollard" (0.96), the <dt> line."""
    glossary = (
        "<h1>Harbour glossary</h1><dl><dt>Berth</dt><dd>A place where a boat is moored.</dd><dt>Pilot</dt>"
        "<dd>A sailor who guides ships into the harbour.</dd>"
        "<dt>Bollard</dt><dd>A short post that mooring lines are {}.</dd></dl>"
    )
    answer = _answered_from_extracted_text(
        real_cli,
        tmp_path,
        "glossary.html",
        glossary.format("tied to").encode(),
        "What is a bollard?",
        "A short post",
        glossary.format("made fast to").encode(),
    )
    assert answer["text"] == "Bollard: A short post that mooring lines are tied to."


def test_a_saved_web_page_answers_from_its_article_not_its_footer(real_cli, tmp_path):
    """ "Who owns the site?"-like questions used to find the footer; now only the article's text is indexed."""
    answer = _answered_from_extracted_text(
        real_cli,
        tmp_path,
        "harbour.html",
        WEB_PAGE.encode(),
        "When will the harbour close?",
        "December to March",
        WEB_PAGE.replace("Monday", "Tuesday").encode(),
    )
    assert answer["text"] == "The harbour will close from December to March, the council said on Monday."
    payload = json.loads(
        real_cli("ask", "Who holds the rights to the ACME news site?", "--json", "--index-dir", str(tmp_path / "idx"))[
            1
        ]
    )
    assert not any("rights reserved" in p["text"] or "newsletter" in p["text"] for p in payload["passages"])


def test_an_extractor_upgrade_re_reads_old_pdfs_instead_of_leaving_them_stale(real_cli, tmp_path, monkeypatch):
    """An index built by the previous PDF extractor (pdf 1: 'zep_set_' + 'name()' stayed two words): with the
    current one its quotes no longer match, so they are flagged STALE; the next `qa index` reads the PDF again
    though its bytes are the same, and the answer is quoted from the new text."""
    from index import readers
    from index.readers import pdf

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "api.pdf").write_bytes(
        make_pdf(
            [["The zeppelin library names ships.", "To rename a ship, call zep_set_", "name() with the new name."]]
        )
    )
    (docs / "notes.txt").write_text("Zeppelins carried passengers across the Atlantic.", encoding="utf-8")
    index_dir = tmp_path / "idx"
    current_reflow, current_version = pdf._reflow, readers.EXTRACTORS["pdf"]
    with monkeypatch.context() as old:
        old.setattr(pdf, "_reflow", lambda page: current_reflow(page).replace("zep_set_name()", "zep_set_ name()"))
        old.setitem(readers.EXTRACTORS, "pdf", current_version - 1)
        assert real_cli("index", str(docs), "--index-dir", str(index_dir))[0] == 0
    question = ("How do I rename a ship?", "--json", "--index-dir", str(index_dir))
    payload = json.loads(real_cli("ask", *question)[1])
    assert any(p["stale"] for p in payload["passages"] if p["source"] == "api.pdf")
    code, out, err = real_cli("index", str(docs), "--index-dir", str(index_dir))
    assert code == 0 and "0 new, 1 changed, 1 unchanged" in out + err
    payload = json.loads(real_cli("ask", *question)[1])
    assert (
        payload["found"] and payload["answer"]["source"] == "api.pdf" and "zep_set_name()" in payload["answer"]["text"]
    )
    assert not any(p["stale"] for p in payload["passages"])


def test_an_edit_is_indexed_as_a_bm25_delta_and_answers_like_a_fresh_build(real_cli, tmp_path):
    """Real model, real files: after editing one of 82 SciFact abstracts, `qa index` links both BM25
    bases and writes deltas beside them (index format 4); the new sentence is found and cited, and
    the passages, their BM25 scores and their order equal those of a fresh build of the same files."""
    from qa.beir import load_beir

    corpus = load_beir(DATA / "scifact_slice").corpus
    docs = tmp_path / "docs"
    docs.mkdir()
    for doc_id in list(corpus)[:80] + ["13770184", "19529370"]:
        (docs / f"{doc_id}.txt").write_text(corpus[doc_id], encoding="utf-8")
    index_dir = tmp_path / "idx"
    code, _, err = real_cli("index", str(docs), "--index-dir", str(index_dir))
    assert code == 0, err
    old = store.current_generation(index_dir)
    base_inodes = [
        (old / folder / "indices.csc.index.npy").stat().st_ino for folder in (store.BM25_DIR, store.UNIT_BM25_DIR)
    ]
    edited = sorted(docs.iterdir())[7]
    sentence = "The Reykjavik cohort enrolled 4,321 volunteers with lactose intolerance."
    edited.write_text(edited.read_text(encoding="utf-8") + " " + sentence, encoding="utf-8")
    code, _, err = real_cli("index", str(docs), "--index-dir", str(index_dir))
    assert code == 0 and "0 new, 1 changed, 81 unchanged" in err, err
    new = store.current_generation(index_dir)
    assert store.read_manifest(index_dir).format_version == store.DELTA_FORMAT_VERSION
    assert all((new / folder / "delta_rows.npy").is_file() for folder in (store.BM25_DIR, store.UNIT_BM25_DIR))
    assert [
        (new / folder / "indices.csc.index.npy").stat().st_ino for folder in (store.BM25_DIR, store.UNIT_BM25_DIR)
    ] == base_inodes

    fresh_dir = tmp_path / "fresh"
    code, _, err = real_cli("index", str(docs), "--index-dir", str(fresh_dir))
    assert code == 0, err
    question = "How many volunteers did the Reykjavik cohort enrol?"
    payloads = []
    for where in (index_dir, fresh_dir):
        code, out, err = real_cli("ask", question, "--json", "-k", "5", "--index-dir", str(where))
        assert code == 0, err
        payloads.append(json.loads(out))
    updated, fresh = payloads
    assert (
        updated["found"]
        and updated["answer"]["source"] == edited.name
        and "4,321 volunteers" in updated["answer"]["text"]
    )
    assert_exact(updated["answer"], docs)
    assert [(p["source"], p["char_start"], p["char_end"], p["scores"]["bm25"]) for p in updated["passages"]] == [
        (p["source"], p["char_start"], p["char_end"], p["scores"]["bm25"]) for p in fresh["passages"]
    ]


def test_an_index_dir_inside_the_corpus_is_not_indexed_as_documents(real_cli, tmp_path):
    """`qa index docs --index-dir docs/idx` twice: the second run finds nothing new and skips nothing
    (the index's own terms.txt files are not documents, and not the user's to be told about)."""
    import shutil

    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    for _ in range(2):
        code, _, err = real_cli("index", str(docs), "--index-dir", str(docs / "idx"))
        assert code == 0, err
    assert "0 new, 0 changed, 2 unchanged, 0 removed, 0 skipped" in err, err
    with open_store(docs / "idx").read_catalog() as (catalog, _):
        assert catalog.sources() == sorted(p.name for p in SEEDS.iterdir())


def test_qa_index_watch_indexes_an_edit_and_stops_on_ctrl_c(real_cli, tmp_path, monkeypatch):
    """`qa index --watch` where there are no change notifications (tests/test_changes.py has them):
    the first run indexes everything, a later edit is indexed on the next look (with the model
    loaded once), and Ctrl-C stops it with exit code 0."""
    import shutil

    import qa.service

    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    looks = []

    def sleep(seconds: float) -> None:
        if seconds != 3.0:
            return
        looks.append(seconds)
        if len(looks) == 1:
            article = docs / "002_c6b6b51f87ff079e.txt"
            article.write_text(
                article.read_text(encoding="utf-8") + "\nThe Reykjavik summit was postponed until March 2016.\n",
                encoding="utf-8",
            )
        elif len(looks) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(qa.service, "_sleep", sleep)
    monkeypatch.setattr(qa.service, "open_change_feed", lambda config, on_change=None: None)
    code, _, err = real_cli("index", str(docs), "--index-dir", str(tmp_path / "idx"), "--watch", "-q")
    assert code == 0, err
    assert "2 new, 0 changed, 0 unchanged" in err and "0 new, 1 changed, 1 unchanged" in err, err
    assert "Watching for changes every 3 s" in err and "Stopped watching" in err
    code, out, err = real_cli(
        "ask", "Until when was the Reykjavik summit postponed?", "--json", "--index-dir", str(tmp_path / "idx")
    )
    assert code == 0 and "postponed until March 2016" in json.loads(out)["answer"]["text"], out


def test_a_hard_wrapped_note_is_answered_with_whole_sentences(real_cli, tmp_path):
    """Markdown wrapped at 72 columns: the answer is the whole sentence across its line breaks (one
    used to be a unit per line, so the answer was a fragment such as "Boats that arrive after dark must
    call the"), cited from its first line to its last."""
    docs = tmp_path / "docs"
    docs.mkdir()
    note = (
        "# Harbour notes\n\n"
        "The harbour master publishes the tide tables every Monday morning, and\n"
        "the ferry timetable follows them. Boats that arrive after dark must call\n"
        "the Harbour Office on channel twelve before they enter the inner basin,\n"
        "where berths are allocated by length. Fishing boats keep the north quay\n"
        "all year round, and visiting yachts moor along the south wall in summer.\n"
        "\n"
        "- The fuel pontoon opens at seven in the morning and closes at dusk in\n"
        "  winter, when the diesel pump is switched off for maintenance.\n"
    )
    (docs / "harbour.md").write_text(note, encoding="utf-8")
    index_dir = tmp_path / "idx"
    assert real_cli("index", str(docs), "--index-dir", str(index_dir))[0] == 0
    code, out, err = real_cli(
        "ask", "Who must boats arriving after dark call?", "--json", "--index-dir", str(index_dir)
    )
    assert code == 0, err
    answer = json.loads(out)["answer"]
    assert answer["text"] == (
        "Boats that arrive after dark must call\n"
        "the Harbour Office on channel twelve before they enter the inner basin,\n"
        "where berths are allocated by length."
    )
    assert (answer["line_start"], answer["line_end"]) == (4, 6)
    assert answer["text"] == note[answer["char_start"] : answer["char_end"]]
    # A heading names a topic: the answer runs on to the sentence under it
    (docs / "setup.md").write_text(
        "# Setting up the radio\n\nSwitch the handset to channel twelve and hold the call button for two seconds.\n",
        encoding="utf-8",
    )
    assert real_cli("index", str(docs), "--index-dir", str(index_dir))[0] == 0
    heading = json.loads(real_cli("ask", "How do I set up the radio?", "--json", "--index-dir", str(index_dir))[1])
    assert heading["found"] and heading["answer"]["source"] == "setup.md"
    assert heading["answer"]["text"].startswith("# Setting up the radio") and heading["answer"]["text"].endswith(
        "for two seconds."
    )
    # A season and a time of day answer "when" (this was "not in the documents", best 0.22)
    payload = json.loads(
        real_cli("ask", "When is the diesel pump switched off?", "--json", "--index-dir", str(index_dir))[1]
    )
    assert payload["found"] and "closes at dusk in\n  winter, when the diesel pump" in payload["answer"]["text"]

"""Loading documents: recursive walk, skip reasons, decoding, HTML text extraction, unicode kept as is."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import pytest
from conftest import SEEDS, WEB_PAGE, make_docx, make_pdf, write_corpus

from index.builder import scan_corpus
from index.chunker import split_sentences
from index.errors import InputError, UndecodableError
from index.readers import load_document
from index.readers.html import html_to_text
from index.readers.pdf import pdf_to_text
from index.readers.text import decode_bytes, page_at
from index.walk import corpus_root, iter_candidate_files

NBSP = "\u00a0"


def test_walk_is_recursive_and_names_sources_relative_with_forward_slashes(tmp_path):
    write_corpus(
        tmp_path,
        {
            "a.txt": "Alpha.",
            "sub/b.md": "# Beta\n\nBeta text.",
            "sub/deeper/c.html": "<p>Gamma text.</p>",
            "sub/deeper/d.htm": "<p>Delta text.</p>",
        },
    )
    root, docs, skipped = scan_corpus([tmp_path])
    assert root == tmp_path.resolve()
    assert sorted(d.source for d in docs) == ["a.txt", "sub/b.md", "sub/deeper/c.html", "sub/deeper/d.htm"]
    assert skipped == []


def test_unsupported_files_are_skipped_with_a_one_line_reason(tmp_path):
    write_corpus(
        tmp_path, {"keep.txt": "Kept.", "photo.png": b"\x89PNG\r\n\x1a\n\x00\x00", "data.csv": "a,b\n1,2", "noext": "x"}
    )
    files, skipped = iter_candidate_files([tmp_path])
    assert [f.name for f in files] == ["keep.txt"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert set(reasons) == {"photo.png", "data.csv", "noext"}
    assert "'.png'" in reasons["photo.png"] and "'.csv'" in reasons["data.csv"]
    assert "no extension" in reasons["noext"]
    for reason in reasons.values():
        assert "\n" not in reason and reason.strip() == reason and len(reason) < 120


def test_an_explicitly_named_unsupported_file_is_skipped_too(tmp_path):
    write_corpus(tmp_path, {"notes.csv": "a,b\n1,2", "keep.txt": "Kept."})
    files, skipped = iter_candidate_files([tmp_path / "notes.csv", tmp_path / "keep.txt"])
    assert [f.name for f in files] == ["keep.txt"]
    assert len(skipped) == 1 and "'.csv'" in skipped[0].reason


def test_hidden_files_and_folders_are_not_walked(tmp_path):
    write_corpus(tmp_path, {".git/config.txt": "no", ".hidden.txt": "no", "seen.txt": "yes"})
    files, skipped = iter_candidate_files([tmp_path])
    assert [f.name for f in files] == ["seen.txt"]
    assert skipped == []


def test_office_owner_files_are_not_documents(tmp_path):
    """Word keeps "~$name.docx" (a few bytes) beside a document while it is open: it used to be skipped as
    "not a readable Word document" on every run, and to start an update in the watches."""
    from index.changes import hidden_or_inside

    write_corpus(
        tmp_path,
        {
            "harbour.docx": make_docx(["Boats must call."]),
            "~$rbour.docx": b"\x0bIngrid   ",
            "~$sub/a.txt": "in a folder: read",
        },
    )
    _, docs, skipped = scan_corpus([tmp_path])
    assert sorted(d.source for d in docs) == ["harbour.docx", "~$sub/a.txt"] and skipped == []
    ignore = hidden_or_inside([tmp_path])
    assert ignore(str(tmp_path.absolute() / "~$rbour.docx")) and not ignore(str(tmp_path.absolute() / "harbour.docx"))
    assert not ignore(str(tmp_path.absolute() / "~$sub" / "a.txt"))


def test_symlinked_folder_is_skipped_with_a_reason(tmp_path):
    write_corpus(tmp_path / "real", {"a.txt": "A."})
    corpus = write_corpus(tmp_path / "corpus", {"b.txt": "B."})
    os.symlink(tmp_path / "real", corpus / "link")
    files, skipped = iter_candidate_files([corpus])
    assert [f.name for f in files] == ["b.txt"]
    assert len(skipped) == 1 and "symbolic link" in skipped[0].reason


def test_missing_path_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="No such file or folder"):
        iter_candidate_files([tmp_path / "nope"])


def test_a_file_named_twice_is_read_once(tmp_path):
    """`qa index docs docs/a.txt` must not index a.txt twice (the SQLite source is unique)."""
    write_corpus(tmp_path, {"a.txt": "Alpha.", "b.txt": "Beta."})
    root, docs, _ = scan_corpus([tmp_path, tmp_path / "a.txt"])
    assert sorted(d.source for d in docs) == ["a.txt", "b.txt"]


def test_binary_and_empty_files_are_skipped_with_reasons(tmp_path):
    write_corpus(tmp_path, {"bin.txt": b"abc\x00\x01\x02def" * 10, "empty.md": "   \n\n", "ok.txt": "Fine."})
    _, docs, skipped = scan_corpus([tmp_path])
    assert [d.source for d in docs] == ["ok.txt"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert "binary" in reasons["bin.txt"]
    assert "empty" in reasons["empty.md"]


def test_size_limit_skips_big_files(tmp_path):
    write_corpus(tmp_path, {"big.txt": "word " * 1000, "small.txt": "tiny"})
    _, docs, skipped = scan_corpus([tmp_path], max_bytes=1000)
    assert [d.source for d in docs] == ["small.txt"]
    assert "limit" in skipped[0].reason and "--max-file-mb" in skipped[0].reason


@pytest.mark.parametrize(
    "data, text, encoding",
    [
        ("café “q”".encode(), "café “q”", "utf-8"),
        (codecs.BOM_UTF8 + "café".encode(), "café", "utf-8-sig"),
        ("café\u00a0x".encode("utf-16"), "café\u00a0x", "utf-16"),
        (b"caf\xe9 \x93quoted\x94", "café “quoted”", "cp1252"),
        (b"line one\r\nline two\r\n", "line one\r\nline two\r\n", "utf-8"),
    ],
)
def test_decode_bytes(data, text, encoding):
    assert decode_bytes(data) == (text, encoding)


def test_decode_refuses_binary():
    with pytest.raises(UndecodableError):
        decode_bytes(b"\x00\x01\x02\x03" * 100)


def test_html_uses_a_real_parser_and_drops_scripts_and_styles():
    markup = """<!doctype html><html><head><title>Head title</title>
    <style>p { color: red }</style><script>var secret = "<p>not text</p>";</script></head>
    <body><h1>Heading</h1><p>First &amp; <b>bold</b> paragraph.</p>
    <noscript>enable js</noscript><!-- a comment --><p>Second&nbsp;one &ldquo;quoted&rdquo;.</p></body></html>"""
    text = html_to_text(markup)
    assert "secret" not in text and "color" not in text and "not text" not in text
    assert "enable js" not in text and "Head title" not in text and "comment" not in text
    assert text.splitlines() == ["Heading", "First & bold paragraph.", f"Second{NBSP}one “quoted”."]


def test_a_saved_web_page_is_read_as_its_headline_and_main_text():
    """Menus, site headers, sidebars and footers used to be passages ("© 2025 ACME. All rights reserved."). When
    <main> (or the <article>s) holds the text, it and the headline stay; menus (<nav>) go from any page."""
    assert html_to_text(WEB_PAGE).splitlines() == [
        "Harbour to close in winter",
        "By Ingrid Solberg",
        "The harbour will close from December to March, the council said on Monday. "
        "Boats already moored may stay, but no visiting boats will be allowed in.",
    ]
    articles = (
        "<body><p>Site banner</p><article><p>"
        + "First story words. " * 8
        + "</p></article><article><p>Second story.</p></article><footer>foot</footer></body>"
    )
    assert html_to_text(articles).splitlines() == [("First story words. " * 8).strip(), "Second story."]
    thin = "<body><nav>Home</nav><main><p>Too short.</p></main><p>Other text.</p><footer>foot</footer></body>"
    assert html_to_text(thin).splitlines() == ["Too short.", "Other text.", "foot"], (
        "a <main> of a few words does not stand for the page"
    )


def test_html_inline_tags_and_source_line_wraps_do_not_break_sentences():
    """A sentence split over source lines or wrapped in <a>/<em> must stay one line (one sentence)."""
    markup = (
        "<div><p>Obama met\n   Hollande at the <a href='x'>White House</a> on <em>Tuesday</em>.</p>"
        "<ul><li>One</li><li>Two</li></ul>Tail<br>after break</div>"
    )
    assert html_to_text(markup).splitlines() == [
        "Obama met Hollande at the White House on Tuesday.",
        "One",
        "Two",
        "Tail",
        "after break",
    ]


def test_html_document_text_is_the_extracted_text(tmp_path):
    write_corpus(tmp_path, {"page.html": "<html><body><p>Obama met Hollande.</p><script>x=1</script></body></html>"})
    doc = load_document(tmp_path / "page.html", tmp_path)
    assert doc.encoding == "html"
    assert doc.text == "Obama met Hollande."


def test_nbsp_and_curly_quotes_are_preserved_in_seed_text():
    _, docs, skipped = scan_corpus([SEEDS])
    assert skipped == []
    by_source = {d.source: d for d in docs}
    first = by_source["000_3f65fe5b4edd20f1.txt"].text
    second = by_source["002_c6b6b51f87ff079e.txt"].text
    assert f"how{NBSP}to strengthen" in first
    assert "agreed to “intensify” strikes" in second
    assert "Putin’s intentions" in second
    # The document text is the file, character for character.
    for doc in docs:
        assert doc.text == doc.path.read_bytes().decode("utf-8")


def test_corpus_root():
    assert corpus_root([SEEDS]) == SEEDS.resolve()
    assert corpus_root([SEEDS / "000_3f65fe5b4edd20f1.txt"]) == SEEDS.resolve()
    assert corpus_root([SEEDS / "000_3f65fe5b4edd20f1.txt", SEEDS / "002_c6b6b51f87ff079e.txt"]) == SEEDS.resolve()


def test_sha256_changes_with_content(tmp_path):
    write_corpus(tmp_path, {"a.txt": "one"})
    before = load_document(tmp_path / "a.txt", tmp_path).sha256
    (tmp_path / "a.txt").write_text("two", encoding="utf-8")
    assert load_document(tmp_path / "a.txt", tmp_path).sha256 != before


def test_a_pdf_is_read_through_its_text_layer_with_pages_apart(tmp_path):
    pdf = make_pdf(
        [
            ["The Hindenburg burned at Lakehurst on 6 May 1937.", "Thirty-six (36) people died."],
            [
                "Zeppelins were named after",
                "the count, whose informa-",
                "tion came from balloons.",
                "Call zep_set_",
                "name() to rename.",
                "Notes:",
                "- one",
            ],
        ]
    )
    write_corpus(tmp_path, {"zep.pdf": pdf, "NOTES.PDF": make_pdf([["Upper-case suffix."]])})
    root, docs, skipped = scan_corpus([tmp_path])
    by_source = {d.source: d for d in docs}
    assert not skipped and sorted(by_source) == ["NOTES.PDF", "zep.pdf"]
    doc = by_source["zep.pdf"]
    assert doc.encoding == "pdf"
    # a page break is a line holding a form feed; lines wrapped inside a sentence are joined again
    assert doc.text == (
        "The Hindenburg burned at Lakehurst on 6 May 1937.\nThirty-six (36) people died.\n\f\n"
        "Zeppelins were named after the count, whose information came from balloons.\n"
        "Call zep_set_name() to rename.\nNotes:\n- one"
    )
    assert page_at(doc.text, doc.text.index("Thirty")) == 1 and page_at(doc.text, doc.text.index("Zeppelins")) == 2
    assert page_at("No page breaks here.", 5) is None
    assert load_document(tmp_path / "zep.pdf", root).text == doc.text, (
        "extraction is deterministic: the stale check re-reads it"
    )


def test_a_pdf_wrapped_at_one_width_is_joined_before_capitals_too(tmp_path):
    """A page wrapped at one width: a filled line continues into the next even when that starts with a capital
    ("New Jersey," + "United States"), which the lower-case rule alone left apart; a list item does not."""
    lines = [
        "The Hindenburg was a German commercial passenger-carrying rigid airship, the",
        "lead ship of the Hindenburg class. It was named after Paul von Hindenburg, who",
        "was President of Germany from 1925 until his death in 1934. Filled with",
        "hydrogen, it caught fire while docking at Naval Air Station Lakehurst in Manchester",
        "Township, New Jersey, when it burned on its mooring mast near the coast at",
        "United States Naval Air Station grounds on May 6, 1937.",
        "- Filled with hydrogen, not helium: helium was scarce and expensive at the",
        "Time the airship was built.",
    ]
    write_corpus(tmp_path, {"airship.pdf": make_pdf([lines])})
    text = scan_corpus([tmp_path])[1][0].text
    assert "near the coast at United States Naval Air Station" in text
    assert "\n- Filled with hydrogen" in text, "a list item still starts its own line"


def test_a_pdf_s_running_heads_and_feet_are_left_out(tmp_path):
    """A line that opens or closes most pages, its digits aside ("Page 3 of 4"), is a running head or foot: it
    would sit between one page's last sentence and the next page's first. A sentence that recurs is content,
    and a document of fewer than 3 pages is left as it is."""
    pages = [
        [
            "ACME Harbour Report 2025",
            f"Section {i}. The harbour handled {i * 100} ships.",
            "Boats arriving after dark must call.",
            f"Page {i} of 4",
        ]
        for i in range(1, 5)
    ]
    pages[2].insert(0, "Appendix")  # at the top of one page only: kept
    text = pdf_to_text(make_pdf(pages))
    assert "ACME" not in text and "of 4" not in text
    assert (
        text.split("\n\f\n")[2]
        == "Appendix\nSection 3. The harbour handled 300 ships.\nBoats arriving after dark must call."
    )
    assert text.count("Boats arriving after dark must call.") == 4
    assert pdf_to_text(make_pdf(pages[:2])).count("ACME Harbour Report 2025") == 2


def test_unreadable_pdfs_are_skipped_with_the_reason(tmp_path):
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([["Secret text."]]))))
    writer.encrypt("pw", algorithm="RC4-128")
    locked = io.BytesIO()
    writer.write(locked)
    write_corpus(
        tmp_path,
        {
            "broken.pdf": b"%PDF-1.4\nthis is not a pdf body\n",
            "scanned.pdf": make_pdf([[]]),
            "locked.pdf": locked.getvalue(),
            "ok.txt": "Readable.",
        },
    )
    _, docs, skipped = scan_corpus([tmp_path])
    assert [d.source for d in docs] == ["ok.txt"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons["broken.pdf"].startswith("is not a readable PDF")
    assert reasons["scanned.pdf"] == "a PDF without a text layer (scanned? run OCR on it first)"
    assert reasons["locked.pdf"].startswith("is a password-protected PDF")
    assert all("\n" not in r for r in reasons.values())


def test_a_word_document_is_read_in_order_with_its_tables(tmp_path):
    """.docx: paragraphs, headings and list items a line each, in order; a table row a line of its cells; a cell
    merged across columns once; the same text each time (the stale check extracts anew)."""
    from docx import Document

    path = tmp_path / "harbour.docx"
    path.write_bytes(
        make_docx(
            [
                "# Harbour rules",
                "Boats arriving after dark must call the harbour master.",
                "- Fuel is sold until 18:00.",
                [["Berth", "Length", "Fee"], ["A1", "12 m", "40 EUR"]],
                "The harbour closes in winter.",
            ]
        )
    )
    root, docs, skipped = scan_corpus([tmp_path])
    assert not skipped and len(docs) == 1 and docs[0].encoding == "docx"
    assert docs[0].text == (
        "Harbour rules\nBoats arriving after dark must call the harbour master.\nFuel is sold until 18:00.\n"
        "| Berth | Length | Fee |\n| A1 | 12 m | 40 EUR |\nThe harbour closes in winter."
    )
    assert load_document(path, root).text == docs[0].text
    document = Document(str(path))
    document.tables[0].cell(0, 1).merge(document.tables[0].cell(0, 2))
    document.save(str(path))
    assert "\n| Berth | Length Fee |\n| A1 | 12 m | 40 EUR |\n" in load_document(path, root).text


def test_a_table_row_is_a_line_whose_cells_are_named_by_the_header_row(tmp_path):
    """Read alone, "A1 | 40 EUR" does not say what 40 EUR is: where a table has a header row (HTML <th> cells,
    Word's "Repeat as header row"), each other row names its cells by it. HTML tables used to give a line per cell."""
    from docx import Document
    from docx.oxml import OxmlElement

    html = (
        "<p>Fees.</p><table><thead><tr><th>Berth</th><th>Fee per night</th></tr></thead>"
        "<tr><td>A1</td><td>40 <b>EUR</b></td></tr><tr><td>B2</td><td></td></tr>"
        "<tr><td colspan=2>Closed in winter</td></tr></table>"
        "<table><tr><td>Harbour master</td><td>Ingrid Solberg</td></tr>"
        "<tr><td>Radio</td><td>channel 12</td></tr></table>"
    )
    assert html_to_text(html).splitlines() == [
        "Fees.",
        "| Berth | Fee per night |",
        "| Berth: A1 | Fee per night: 40 EUR |",
        "| Berth: B2 |",
        "| Closed in winter |",
        "| Harbour master | Ingrid Solberg |",
        "| Radio | channel 12 |",  # no <th>: no header, rows as they are
    ]
    text = html_to_text(html)
    assert "| Berth: A1 | Fee per night: 40 EUR |" in [text[a:b] for a, b in split_sentences(text)], (
        "a row is a sentence of its own"
    )
    path = tmp_path / "fees.docx"
    path.write_bytes(make_docx([[["Berth", "Fee per night"], ["A1", "40 EUR"]]]))
    assert load_document(path, tmp_path).text == "| Berth | Fee per night |\n| A1 | 40 EUR |", (
        "not marked as a header: rows as they are"
    )
    document = Document(str(path))
    document.tables[0].rows[0]._tr.get_or_add_trPr().append(OxmlElement("w:tblHeader"))
    document.save(str(path))
    assert load_document(path, tmp_path).text == "| Berth | Fee per night |\n| Berth: A1 | Fee per night: 40 EUR |"


def test_a_definition_starts_with_the_terms_it_defines():
    """<dt> and <dd> were lines of their own, so "What is a bollard?" was answered "Bollard"."""
    html = (
        "<dl><dt>Berth</dt><dd>A place where a boat is moored.</dd><dt>Pilot</dt><dt>Harbour pilot</dt>"
        "<dd>A sailor who guides ships in.</dd><dd>Needed over 70 m.</dd></dl><dl><dd>No term.</dd></dl>"
    )
    assert html_to_text(html).splitlines() == [
        "Berth: A place where a boat is moored.",
        "Pilot / Harbour pilot: A sailor who guides ships in.",
        "Pilot / Harbour pilot: Needed over 70 m.",
        "No term.",
    ]


def test_unreadable_word_documents_are_skipped_with_the_reason(tmp_path, monkeypatch):
    import zipfile

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", "<" + " " * 3_000_000 + ">")
    monkeypatch.setattr("index.readers.docx.UNPACKED_FLOOR", 1_000_000)  # 3 MB of spaces pack into a few KB
    write_corpus(
        tmp_path,
        {
            "broken.docx": b"PK\x03\x04 not really a zip",
            "locked.docx": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
            + b"\0" * 504,  # what Word writes when a password is set: OLE, not zip
            "bomb.docx": bomb.read_bytes(),
            "empty.docx": make_docx([]),
            "ok.docx": make_docx(["Readable."]),
        },
    )
    _, docs, skipped = scan_corpus([tmp_path])
    assert [d.source for d in docs] == ["ok.docx"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons["broken.docx"].startswith("is not a readable Word document")
    assert "password-protected" in reasons["locked.docx"]
    assert reasons["bomb.docx"].startswith("unpacks to 3 MB") and "zip bomb" in reasons["bomb.docx"]
    assert reasons["empty.docx"] == "empty (no text to index)"
    assert all("\n" not in r for r in reasons.values())


def test_notes_in_light_markups_are_read_as_text(tmp_path):
    """reStructuredText, Org and AsciiDoc notes are indexed as plain text (they were skipped as unsupported)."""
    write_corpus(
        tmp_path,
        {
            "a.rst": "Tides\n=====\n\nThe tide tables come out on Monday.",
            "b.org": "* Ferries\nThe ferry leaves at noon.",
            "c.adoc": "= Berths\n\nBerths go by length.",
            "d.docx": b"PK\x03\x04",
        },
    )
    root, docs, skipped = scan_corpus([tmp_path])
    assert sorted(d.source for d in docs) == ["a.rst", "b.org", "c.adoc"]
    assert docs[0].text.startswith("Tides\n=====") and [Path(s.path).name for s in skipped] == ["d.docx"]

"""Notifications leave the status line and the question box in view, on one line (issue 19, item 8)."""

from __future__ import annotations

from tui_helpers import fake_app, notices, sync, write_demo_corpus

from tui.widgets.question_input import QuestionInput
from tui.widgets.status import StatusLine

SIZE = (120, 40)


@sync
async def test_indexed_toast_covers_neither_status_nor_input_and_is_one_line(tmp_path):
    from textual.widgets._toast import Toast

    corpus = write_demo_corpus(tmp_path / "corpus")
    app = fake_app(corpus)  # nothing prebuilt: the first run indexes and says "Indexed: …"
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        for _ in range(400):  # the toast lasts a few seconds: look as soon as it is up
            await pilot.pause(0.05)
            toasts = list(app.screen.query(Toast))
            if toasts:
                break
        assert [m for _, m in notices(app) if m.startswith("Indexed:")] == ["Indexed: 3 new"]
        assert toasts, "the Indexed toast is on screen"
        await pilot.pause()
        status = app.query_one(StatusLine).region
        box = app.query_one(QuestionInput).region
        for toast in toasts:
            assert not toast.region.overlaps(status), (toast.region, status)
            assert not toast.region.overlaps(box), (toast.region, box)
            assert toast.content_region.height == 1, toast.content_region  # the message is not wrapped


def test_brief_summary_leaves_out_zero_counts(tmp_path, fake_embedder):
    from index.builder import build_index

    corpus = write_demo_corpus(tmp_path / "corpus")
    report = build_index([corpus], tmp_path / "idx", fake_embedder)
    assert report.brief() == "3 new"
    (corpus / "paris.txt").write_text("Paris is big.\n", encoding="utf-8")
    (corpus / "evil.txt").unlink()
    (corpus / "bad.pdf").write_bytes(b"not a pdf")
    report = build_index([corpus], tmp_path / "idx", fake_embedder)
    assert report.brief() == "1 changed, 1 removed, 1 skipped"
    assert build_index([corpus], tmp_path / "idx", fake_embedder).brief() == "1 skipped"

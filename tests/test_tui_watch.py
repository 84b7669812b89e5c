"""Pilot tests of the chat noticing edits to the corpus while it is open (tui/watch.py)."""

from __future__ import annotations

import shutil

import pytest
from tui_helpers import fake_app, notices, screen_text, settle, sync, write_demo_corpus

from index import store

SIZE = (120, 40)
TICK = 0.1


@pytest.fixture
def corpus(tmp_path):
    return write_demo_corpus(tmp_path / "corpus")


async def wait_for(pilot, condition, seconds: float = 10.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return True
        await pilot.pause(0.05)
    return condition()


def indexed(app) -> list[str]:
    return [m for _, m in notices(app) if m.startswith("Indexed:")]


def errors(app) -> list[str]:
    return [m for severity, m in notices(app) if severity == "error"]


@sync
async def test_an_edit_while_the_chat_is_open_is_indexed_and_answered(corpus):
    """Without ctrl+r: a changed file is found within a few ticks, the index brought up to date, and
    the next question is answered from the new text."""
    app = fake_app(corpus, watch_seconds=TICK)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        first = app.engine
        assert indexed(app) == ["Indexed: 3 new"]
        (corpus / "paris.txt").write_text(
            "Paris is the capital of France.\nThe Louvre opened in 1793 as a public museum.\n", encoding="utf-8"
        )
        assert await wait_for(pilot, lambda: len(indexed(app)) == 2 and app.engine is not first), screen_text(app)
        assert indexed(app)[1] == "Indexed: 1 changed"
        await settle(pilot)
        assert "Ready · 3 documents" in screen_text(app)
        top = app.engine.search("When did the Louvre open?", k=1, mode="bm25")[0]  # the fake embedder ranks at random
        assert top.citation.source == "paris.txt" and "The Louvre opened in 1793" in top.citation.text
        # Nothing changed since: no further update.
        await pilot.pause(5 * TICK)
        assert len(indexed(app)) == 2


@sync
async def test_an_index_locked_by_another_qa_index_is_left_to_it_quietly(corpus):
    """While another `qa index` holds the lock, the chat neither fails nor complains; once it is
    released, the edit is indexed."""
    app = fake_app(corpus, watch_seconds=TICK)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        index_dir = app.config.resolved_index_dir
        with store.write_lock(index_dir):
            (corpus / "evil.txt").unlink()
            await pilot.pause(10 * TICK)
            assert len(indexed(app)) == 1
            assert not errors(app)
        assert await wait_for(pilot, lambda: len(indexed(app)) == 2), screen_text(app)
        assert indexed(app)[1] == "Indexed: 1 removed"
        assert not errors(app)


@sync
async def test_a_failing_update_is_reported_once_and_not_retried_until_ctrl_r(corpus, monkeypatch):
    import qa.service
    from index.errors import QAError

    calls = []
    real = qa.service.index_corpus

    def failing(*args, **kwargs):
        calls.append(1)
        raise QAError("The disk is full.", "Free some space.")

    app = fake_app(corpus, watch_seconds=TICK)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        monkeypatch.setattr(qa.service, "index_corpus", failing)
        (corpus / "paris.txt").write_text("Paris changed.\n", encoding="utf-8")
        assert await wait_for(pilot, lambda: calls), screen_text(app)
        await pilot.pause(10 * TICK)
        await settle(pilot)
        assert len(calls) == 1
        assert errors(app) == ["The disk is full. Free some space."]
        monkeypatch.setattr(qa.service, "index_corpus", real)
        await pilot.press("ctrl+r")
        assert await wait_for(pilot, lambda: len(indexed(app)) == 2), screen_text(app)


@sync
async def test_no_update_while_a_dialog_is_open(corpus):
    """The bench may be running on the engine and the filter lists its documents: an edit made while
    a dialog is open is indexed once it closes."""
    app = fake_app(corpus, watch_seconds=TICK)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()
        (corpus / "paris.txt").write_text("Paris changed while the help was open.\n", encoding="utf-8")
        await pilot.pause(10 * TICK)
        assert len(indexed(app)) == 1
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: len(indexed(app)) == 2), screen_text(app)


@sync
async def test_a_saved_file_is_indexed_from_the_notification_alone(corpus, monkeypatch):
    """With change notifications the chat does not wait for its timer (30 s here): a save is
    compared and indexed at once, the second one from its path alone."""
    import qa.service

    hints = []
    real = qa.service.index_corpus

    def spy(*args, **kwargs):
        hints.append(kwargs.get("changed_paths"))
        return real(*args, **kwargs)

    monkeypatch.setattr(qa.service, "index_corpus", spy)
    app = fake_app(corpus, watch_seconds=30.0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert await wait_for(pilot, lambda: app._feed is not None), "the change feed started"
        first = app.engine
        (corpus / "paris.txt").write_text(
            "Paris is the capital of France.\nThe Louvre opened in 1793.\n", encoding="utf-8"
        )
        assert await wait_for(pilot, lambda: len(indexed(app)) == 2 and app.engine is not first), screen_text(app)
        second = app.engine
        await settle(pilot)
        note = corpus / "note.md"
        note.write_text("The harbour closes at dusk in winter.\n", encoding="utf-8")
        assert await wait_for(pilot, lambda: len(indexed(app)) == 3 and app.engine is not second), screen_text(app)
        assert indexed(app)[2] == "Indexed: 1 new"
        assert hints[-1] is not None and str(note.absolute()) in hints[-1], (
            hints
        )  # (with paris.txt's later events, maybe)
    assert not app._feed._thread.is_alive(), "closed with the app"


@sync
async def test_a_corpus_folder_moved_away_is_waited_for_and_compared_again_when_back(corpus, tmp_path):
    """A folder moved away (a checkout, a sync tool) used to fail each comparison silently while the
    status said Ready; then the change notifications, still watching the old folder, saw nothing more.
    Now the status says it is gone, the index stays, and when it is back every file is compared and
    the feed watches the folder afresh: a later save is indexed from its notification."""
    app = fake_app(corpus, watch_seconds=TICK)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert await wait_for(pilot, lambda: app._feed is not None), "the change feed started"
        away = tmp_path / "away"
        corpus.rename(away)
        assert await wait_for(pilot, lambda: "gone (moved or deleted?)" in screen_text(app)), screen_text(app)
        assert app.engine.sources() and not errors(app)
        (away / "paris.txt").write_text(
            "Paris is the capital of France.\nThe Louvre opened in 1793.\n", encoding="utf-8"
        )
        away.rename(corpus)
        assert await wait_for(pilot, lambda: len(indexed(app)) == 2), screen_text(app)
        assert indexed(app)[1] == "Indexed: 1 changed"
        await settle(pilot)
        assert "Ready · 3 documents" in screen_text(app)
        shutil.rmtree(corpus)  # deleted and made again: the old watch sees nothing in the new folder
        assert await wait_for(pilot, lambda: "gone (moved or deleted?)" in screen_text(app)), screen_text(app)
        write_demo_corpus(corpus)
        assert await wait_for(pilot, lambda: len(indexed(app)) == 3), screen_text(app)
        await settle(pilot)
        app._watch_timer.stop()  # from now on only a notification can bring the next update
        (corpus / "note.md").write_text("The harbour closes at dusk in winter.\n", encoding="utf-8")
        assert await wait_for(pilot, lambda: len(indexed(app)) == 4), screen_text(app)
        assert indexed(app)[3] == "Indexed: 1 new"

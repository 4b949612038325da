"""The search index (cafe.textindex): it never hides a match, whoever changed what, and
a word in no meeting reads no meeting's entries."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, func, insert, select, text, update

from cafebot.cafe import search, textindex
from cafebot.cafe.meetings import series_row
from cafebot.cafe.scheduler import Lifecycle
from cafebot.notes.archive import import_archive, parse_archive
from cafebot.storage import backup, db
from cafebot.storage.models import Action, Introduction, ItemNote, Meeting, Person
from tests.harness import ADA, CAFE, Harness, RecordingChat
from tests.test_archive_reader import fixture

NOW = dt.datetime(2031, 6, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def bot(db_url: str) -> Iterator[Harness]:
    harness = Harness(db_url)
    for name in ("2029.md", "2030.md", "2031.md"):
        with harness.app.unit_of_work() as session:
            import_archive(session, CAFE, parse_archive(fixture(name)), NOW)
    yield harness
    harness.close()


def stale(bot: Harness) -> set[int]:
    with bot.app.unit_of_work() as session:
        return set(session.scalars(select(textindex.stale.c.meeting_id)))


def documents(bot: Harness) -> int:
    with bot.app.unit_of_work() as session:
        return int(session.scalar(text("SELECT count(*) FROM search_text")) or 0)


def refresh(bot: Harness) -> None:
    textindex.refresh_all(bot.app.unit_of_work)
    assert stale(bot) == set()


def candidates(bot: Harness, *words: str) -> list[int]:
    with bot.app.unit_of_work() as session:
        return textindex.candidates(session, series_row(session, CAFE).id, words)


def found(bot: Harness, *words: str, published_only: bool = False) -> list[search.Hit]:
    with bot.app.unit_of_work() as session:
        sid = series_row(session, CAFE).id
        hits, total = search.find_in(session, sid, words, 10_000, published_only=published_only)
        assert len(hits) == total
        assert search.newest_in(session, sid, words, 10_000, published_only=published_only) == hits
        return hits


def meeting_ids(bot: Harness) -> set[int]:
    return {m.id for m in bot.rows(Meeting)}


def test_imported_meetings_are_stale_until_refreshed(bot: Harness) -> None:
    every = meeting_ids(bot)
    assert stale(bot) == every  # searched entry by entry until then
    assert set(candidates(bot, "xylophone")) == every
    refresh(bot)
    assert documents(bot) == len(every)  # every imported meeting has entries
    assert candidates(bot, "xylophone") == []  # no meeting's entries are read
    paper = candidates(bot, "paper club")
    assert paper and set(paper) < every
    assert {h.ref.split("/")[0] for h in found(bot, "paper club")} == {
        m.date.isoformat() for m in bot.rows(Meeting) if m.id in paper
    }
    # A word too short for the index is looked for in every meeting.
    assert set(candidates(bot, "ab")) == every
    assert candidates(bot, "ab", "xylophone") == []


def test_the_index_never_hides_a_match(bot: Harness) -> None:
    # Words and phrases from every entry, in other letter cases and cut anywhere: what the
    # index finds is what reading every entry finds (every meeting marked stale).
    with bot.app.unit_of_work() as session:
        haystacks = [h for _, h in search.entries(session, series_row(session, CAFE).id)]
    queries: list[tuple[str, ...]] = [("xylophone",), ("ab",), ("a", "zzz"), ("the", "and")]
    # What means something to FTS5 or to LIKE is text.
    queries += [('"and"',), ("100%",), ("a_b",), ("back\\slash",), ("NEAR(and",), ("the*",)]
    queries += [("and", "OR"), ("-",), ("^the",), ("'s",), ("ÉTÉ",)]
    for haystack in haystacks:
        words = haystack.split()
        queries.append((words[0].upper(),))
        queries.append((" ".join(words[-2:]),))
        queries.append((haystack[3:9].strip() or "x", words[-1].swapcase()))
    queries = list(dict.fromkeys(q for q in queries if all(w.strip() for w in q)))
    assert len(queries) > 100
    refresh(bot)
    indexed = {(q, p): found(bot, *q, published_only=p) for q in queries for p in (False, True)}
    assert sum(1 for hits in indexed.values() if hits) > len(indexed) // 2
    with bot.app.unit_of_work() as session:
        session.execute(insert(textindex.stale).from_select(["meeting_id"], select(Meeting.id)))
    for (q, p), hits in indexed.items():
        assert found(bot, *q, published_only=p) == hits, q


def test_a_changed_meeting_is_searched_before_and_after_the_refresh(bot: Harness) -> None:
    refresh(bot)
    assert found(bot, "xylophone") == []
    assert bot.send("agenda 10m Xylophone tuning", ADA).acked  # 17 June 2031
    (june,) = [m for m in bot.rows(Meeting) if m.date == dt.date(2031, 6, 17)]
    assert june.id in stale(bot)
    assert [h.ref for h in found(bot, "xylophone")] == ["2031-06-17/A1"]
    refresh(bot)
    assert candidates(bot, "xylophone") == [june.id]  # found through the index now
    assert [h.ref for h in found(bot, "xylophone")] == ["2031-06-17/A1"]
    bot.send("edit A1 10m Marimba tuning", ADA)
    assert june.id in stale(bot)
    assert found(bot, "xylophone") == []
    assert [h.ref for h in found(bot, "marimba")] == ["2031-06-17/A1"]
    refresh(bot)
    assert candidates(bot, "xylophone") == []
    assert [h.ref for h in found(bot, "marimba")] == ["2031-06-17/A1"]
    bot.send("remove A1", ADA)
    assert found(bot, "marimba") == []
    refresh(bot)
    assert candidates(bot, "marimba") == []


def test_a_new_name_marks_the_meetings_that_show_it(bot: Harness) -> None:
    refresh(bot)
    intro = bot.rows(Introduction)[0]
    with bot.app.unit_of_work() as session:
        session.execute(update(Person).where(Person.id == intro.person_id).values(name="Quokka"))
    assert intro.meeting_id in stale(bot)
    assert f"I{intro.ref}" in {h.ref.split("/")[-1] for h in found(bot, "quokka")}
    refresh(bot)
    assert intro.meeting_id in candidates(bot, "quokka")


def test_an_action_given_to_someone_else_marks_its_note(bot: Harness) -> None:
    refresh(bot)
    with bot.app.unit_of_work() as session:
        note = session.scalars(select(ItemNote).where(ItemNote.action_id.is_not(None))).first()
        assert note is not None, "the archives hold actions"
        meeting_id, action_id = note.item.meeting_id, note.action_id
        wombat = Person(name="Wombat", created_at=NOW)
        session.add(wombat)
        session.flush()
        session.execute(update(Action).where(Action.id == action_id).values(owner_id=wombat.id))
    assert meeting_id in stale(bot)
    assert found(bot, "wombat")
    refresh(bot)
    assert candidates(bot, "wombat") == [meeting_id]
    assert found(bot, "wombat")
    with bot.app.unit_of_work() as session:
        session.execute(delete(Action).where(Action.id == action_id))
    assert meeting_id in stale(bot)
    assert found(bot, "wombat") == []


def test_a_deleted_meeting_leaves_no_document(bot: Harness) -> None:
    refresh(bot)
    before = documents(bot)
    with bot.app.unit_of_work() as session:
        oldest = session.scalars(select(Meeting).order_by(Meeting.date)).first()
        assert oldest is not None
        session.delete(oldest)
    refresh(bot)
    assert documents(bot) == before - 1


def test_the_bot_refreshes_a_batch_at_a_time(bot: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textindex, "REFRESH_BATCH", 2)
    lifecycle = Lifecycle(bot.app, RecordingChat())
    assert lifecycle.refresh_search() == len(meeting_ids(bot))
    assert stale(bot) == set()
    assert lifecycle.refresh_search() == 0


def test_a_refresh_keeps_the_marks_it_did_not_read(bot: Harness) -> None:
    # A change made after the refresh read its marks leaves a mark of its own.
    with bot.app.unit_of_work() as session:
        first = sorted(stale(bot))[:1]
        marks = session.scalar(select(func.count()).select_from(textindex.stale))
        assert textindex.refresh(session, meetings=1) == 1
        session.execute(insert(textindex.stale).values(meeting_id=first[0]))
    left = stale(bot)
    assert first[0] in left and len(left) == len(meeting_ids(bot))  # it is still to do
    assert marks and marks > len(left)


@pytest.mark.postgres
def test_without_pg_trgm_the_migration_warns_and_search_still_works(
    postgres_admin: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # A role that may not install extensions (no CREATE on its database): the table has no
    # trigram index, and search reads every document instead.
    suffix = uuid.uuid4().hex[:12]
    name, role = f"cafebot_test_{suffix}", f"cafebot_plain_{suffix}"
    with postgres_admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin_of_new = db.make_engine(postgres_admin.url.set(database=name))
    try:
        with admin_of_new.begin() as connection:
            connection.exec_driver_sql(f'GRANT ALL ON SCHEMA public TO "{role}"')
        engine = db.make_engine(postgres_admin.url.set(database=name, username=role))
        try:
            with caplog.at_level(logging.WARNING):
                db.upgrade_database(engine)
            assert "no pg_trgm index for search" in caplog.text
            with engine.connect() as connection:
                indexes = set(
                    connection.scalars(
                        text("SELECT indexname FROM pg_indexes WHERE tablename = 'search_text'")
                    )
                )
            assert "ix_search_text_trgm" not in indexes
            sessions = db.session_factory(engine)
            with db.unit_of_work(sessions) as session:
                import_archive(session, CAFE, parse_archive(fixture("2030.md")), NOW)
            textindex.refresh_all(lambda: db.unit_of_work(sessions))
            with db.unit_of_work(sessions) as session:
                sid = series_row(session, CAFE).id
                assert textindex.candidates(session, sid, ["xylophone"]) == []
                hits, _ = search.find_in(session, sid, ["paper club"], 100)
                assert len(hits) == 5
        finally:
            engine.dispose()
    finally:
        admin_of_new.dispose()
        with postgres_admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')


def test_a_restored_database_is_searched_at_once_and_indexed_by_a_refresh(
    bot: Harness, tmp_path: Path
) -> None:
    # A backup leaves the index out (it is derived); the restore's rows mark every meeting.
    refresh(bot)
    data = backup.dump(bot.app.engine)
    assert not any(name.startswith("search_") for name in data["tables"])
    target = db.make_engine(f"sqlite:///{tmp_path / 'restored.db'}")
    try:
        backup.restore(target, data)
        restored = Harness(str(target.url))
        try:
            assert stale(restored) == meeting_ids(restored)
            assert [h.ref for h in found(restored, "paper club")] == [
                h.ref for h in found(bot, "paper club")
            ]
            refresh(restored)
            assert candidates(restored, "xylophone") == []
            assert len(found(restored, "paper club")) == len(found(bot, "paper club"))
        finally:
            restored.close()
    finally:
        target.dispose()


@pytest.mark.postgres
def test_on_postgresql_the_lookup_is_one_the_trigram_index_answers(postgres_admin: Engine) -> None:
    # The statement candidates() sends (ILIKE with an escape) is one the GIN index serves:
    # with sequential scans off, the plan reads ix_search_text_trgm.
    name = f"cafebot_test_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = db.make_engine(postgres_admin.url.set(database=name))
    try:
        db.upgrade_database(engine)
        sessions = db.session_factory(engine)
        with db.unit_of_work(sessions) as session:
            import_archive(session, CAFE, parse_archive(fixture("2030.md")), NOW)
        textindex.refresh_all(lambda: db.unit_of_work(sessions))
        sent: list[tuple[str, Any]] = []

        def keep(*args: Any) -> None:
            sent.append((args[2], args[3]))

        event.listen(engine, "before_cursor_execute", keep)
        with db.unit_of_work(sessions) as session:
            sid = series_row(session, CAFE).id
            sent.clear()
            assert textindex.candidates(session, sid, ["xylophone", "100%"]) == []
            (statement, parameters), *_ = [s for s in sent if "search_text" in s[0]]
            session.execute(text("SET LOCAL enable_seqscan = off"))
            cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            cursor.execute("EXPLAIN " + statement, parameters)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        event.remove(engine, "before_cursor_execute", keep)
        assert "ix_search_text_trgm" in plan, plan
    finally:
        engine.dispose()
        with postgres_admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

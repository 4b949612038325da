"""Issue 17, "Running a meeting as an organiser meets it": each point as a person sees it,
through a real `cafebot shell` process on a real SQLite file."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from tests.test_cli import cafebot


def shell(tmp_path: Path, *lines: str) -> str:
    db = f"sqlite:///{tmp_path / 'cafe.db'}"
    stdin = "".join(f"{line}\n" for line in lines)
    result = cafebot("shell", "--db", db, stdin=stdin, cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


# ---------------------------------------------------------------- 5. estimates


@pytest.mark.parametrize(
    ("written", "minutes"),
    [
        pytest.param("~5 min", 5, id="tilde"),
        pytest.param("~5 minutes", 5, id="tilde-minutes"),
        pytest.param("about 20 min", 20, id="about"),
        pytest.param("1.5h", 90, id="decimal-hours"),
        pytest.param("1,5h", 90, id="decimal-comma"),
        pytest.param("90 min", 90, id="minutes-spaced"),
        pytest.param("half an hour", 30, id="half-an-hour"),
        pytest.param("a quarter of an hour", 15, id="quarter"),
        pytest.param("an hour and a half", 90, id="hour-and-a-half"),
        pytest.param("(~10-15 mins)", None, id="range-in-parentheses"),
    ],
)
def test_the_estimates_people_write_are_read_and_leave_the_topic(
    tmp_path: Path, written: str, minutes: int | None
) -> None:
    out = shell(tmp_path, f"agenda {written} Release plans", "list")
    shown = f"({minutes} min)" if minutes is not None else "(10-15 min)"
    assert f"**A1** {shown} Release plans — " in out, out


@pytest.mark.parametrize(
    "written",
    [
        pytest.param("5mn", id="misspelt-unit"),
        pytest.param("~5", id="no-unit"),
        pytest.param("2h30", id="hours-and-minutes"),
        pytest.param("10 secs", id="seconds"),
        pytest.param("2.5m", id="fraction-of-a-minute"),
    ],
)
def test_what_looks_like_an_estimate_but_is_not_one_is_said_so(
    tmp_path: Path, written: str
) -> None:
    out = shell(tmp_path, f"agenda {written} Release plans", "list")
    assert ":check:" not in out
    assert f"'{written}'" in out and "agenda 10m Release plans" in out
    assert "No items yet" in out  # nothing was filed under a topic


@pytest.mark.parametrize("topic", ["2026 roadmap", "3D printing", "5G rollout", "An hour of code"])
def test_a_topic_that_starts_with_a_number_or_words_is_still_a_topic(
    tmp_path: Path, topic: str
) -> None:
    out = shell(tmp_path, f"agenda {topic}", "list")
    assert f"**A1** {topic} — " in out, out


def test_edit_reads_estimates_as_agenda_does(tmp_path: Path) -> None:
    out = shell(tmp_path, "agenda 10m Release plans", "edit A1 15-10m bad", "list")
    assert out.count(":check:") == 1
    assert "'15-10m' is not a usable estimate" in out
    assert "For example: `edit A1 15m Release plans`" in out
    assert "**A1** (10 min) Release plans — " in out  # unchanged
    out = shell(tmp_path, "edit A1 half an hour Release plans, longer", "list")
    assert "**A1** (30 min) Release plans, longer — " in out


# ---------------------------------------------------------------- 4. continuation lines


def test_continuation_lines_written_as_bullets_nest_without_their_markers(tmp_path: Path) -> None:
    out = shell(
        tmp_path,
        "agenda 5m Topic\\\n- first\\\n* second\\\n  - deeper\\\n1. numbered\\\nplain line",
        "intro I am Ada\\\n- I like engines\\\n  * and looms",
        "shoutout [Quill] Thanks\\\n+ for the docs",
        "notes",
    )
    assert "\\-" not in out and "\\*" not in out and "\\+" not in out
    # The preview shows each note's sub-reference (`A1.1`); the notes themselves do not.
    preview = re.sub(r" `A\d+\.\d+`", "", out)
    agenda = preview[preview.index("- [name=root] (5 min): Topic") :]
    assert agenda.startswith(
        "- [name=root] (5 min): Topic\n"
        "    - first\n"
        "    - second\n"
        "        - deeper\n"
        "    - numbered\n"
        "    - plain line\n"
    ), agenda
    assert "- root: I am Ada\n    - I like engines\n    - and looms\n" in out
    assert "- [name=root] Thanks\n    - for the docs\n" in out


# ---------------------------------------------------------------- 6. empty and extra fields


@pytest.mark.parametrize("command", ["shoutout []", "shoutout [ ]", "shoutout [  ]  "])
def test_a_shout_out_of_empty_brackets_is_refused_as_an_empty_one_is(
    tmp_path: Path, command: str
) -> None:
    out = shell(tmp_path, command, "list")
    assert ":check:" not in out
    assert "What should the shout-out say?" in out
    assert "**Shout-outs**" not in out and "**S1**" not in out


def test_empty_brackets_before_a_shout_out_name_no_project(tmp_path: Path) -> None:
    out = shell(tmp_path, "shoutout [] Thanks all", "list")
    assert "- **S1** Thanks all — " in out


def test_a_check_in_with_a_fourth_field_says_what_the_three_are(tmp_path: Path) -> None:
    out = shell(tmp_path, "checkin A / @b / C / D", "checkin Ada / @ada / Jupyter/Binder", "list")
    assert "three fields: your name / GitHub handle / affiliation" in out
    assert "For example: `checkin Ada Lovelace / @ada / Analytical Engines`" in out
    assert "**Check-ins** (1)" in out and "- **C1** Ada / @ada / Jupyter/Binder" in out


# ---------------------------------------------------------------- 19. escapes in listings


def test_listings_show_the_text_as_written_without_markdown_escapes(tmp_path: Path) -> None:
    out = shell(
        tmp_path,
        "agenda 5m ## Heading",
        "agenda 1. Numbered topic",
        "checkin # Hash / @hash / > Quote Lab",
        "list",
        "next",
        "search Heading",
    )
    assert "\\" not in out, out
    assert "- **A1** (5 min) ## Heading — # Hash" in out  # list
    assert "- **A2** 1. Numbered topic — # Hash" in out
    assert "- **C1** # Hash / @hash / > Quote Lab" in out
    assert "- A1 (5 min) ## Heading\n" in out  # next
    assert "- **2026-" in out and "/A1** (5 min) ## Heading — # Hash" in out  # search


# ---------------------------------------------------------------- 9. a short name


ARCHIVE = """# 2031 Collaboration Cafe Notes Archive

## 2031-05-20

### Check-in :raising_hand:

- _Name / GitHub handle / affiliation_
- Priya Raman / @praman / Open Atlas Foundation
- Priya Shah / @pshah / Harbour Lab
- Jonas / @jonas-b / Independent consultant

### Agenda :clock2:

- [name=Jonas] (10 min): Community survey results
"""


def archive(tmp_path: Path, text: str) -> str:
    path = tmp_path / "2031.md"
    path.write_text(text, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'cafe.db'}"
    result = cafebot("archive", "import", "--db", db, str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return db


def as_person(db: str, name: str, *lines: str) -> str:
    who = f"{name} <{name.lower()}@example.org>"
    stdin = "".join(f"{line}\n" for line in lines)
    cwd = Path(db.removeprefix("sqlite:///")).parent
    return cafebot("shell", "--db", db, "--as", who, stdin=stdin, cwd=cwd).stdout


def test_a_first_name_finds_the_archives_people_of_that_first_name(tmp_path: Path) -> None:
    db = archive(tmp_path, ARCHIVE.replace("- Priya Shah / @pshah / Harbour Lab\n", ""))
    out = as_person(db, "Priya", "checkin Priya", "itsme")
    assert "The notes archive has Priya Raman (@praman, Open Atlas Foundation)" in out
    assert "1 meeting, on 2031-05-20" in out and "say `itsme`" in out
    assert "Done: the notes archive's Priya Raman (1 meeting, on 2031-05-20) is you now." in out


def test_several_people_of_that_first_name_are_offered_to_choose_from(tmp_path: Path) -> None:
    db = archive(tmp_path, ARCHIVE)
    out = as_person(db, "Priya", "checkin Priya", "itsme 2")
    assert "The notes archive has 2 people whose first name is Priya:" in out
    assert "1. Priya Raman (@praman, Open Atlas Foundation)" in out
    assert "2. Priya Shah (@pshah, Harbour Lab)" in out
    assert "Done: the notes archive's Priya Shah (1 meeting, on 2031-05-20) is you now." in out


def test_an_exact_name_is_still_preferred_to_a_first_name(tmp_path: Path) -> None:
    db = archive(tmp_path, ARCHIVE)
    out = as_person(db, "Jonas", "checkin Jonas", "itsme")
    assert "The notes archive has Jonas (@jonas-b, Independent consultant)" in out
    assert "Done: the notes archive's Jonas (1 meeting, on 2031-05-20) is you now." in out


# ---------------------------------------------------------------- 10. wording


def test_a_missing_text_is_named_for_what_it_is(tmp_path: Path) -> None:
    out = shell(tmp_path, "edit A1", "note", "decision", "action", "search", "shoutout", "edit")
    assert "needs <" not in out and "> text" not in out
    for said in (
        "`edit` needs the new text after the reference.",
        "`note` needs the note's text.",
        "`decision` needs the decision's text.",
        "`action` needs what is to be done.",
        "`search` needs the words to look for.",
        "`shoutout` needs what to celebrate.",
        "`edit` needs a reference, like `A2`.",
    ):
        assert said in out, said


def test_organiser_commands_are_named_as_typed(tmp_path: Path) -> None:
    out = shell(tmp_path, "add meeting 2031-06-24 16:00")
    assert "may use `add meeting`." in out


def test_an_unknown_command_shows_the_example_of_the_one_meant(tmp_path: Path) -> None:
    out = shell(tmp_path, "checkn Ada", "blorp")
    assert "Did you mean `checkin`? Say `help` for the list.\nFor example: `checkin " in out
    assert "I don't know the command `blorp`. Say `help` for the list.\n" in out
    assert "For example: `agenda 10m Release plans`" in out  # no guess: the usual example


def test_itsme_with_a_number_when_there_is_one_candidate(tmp_path: Path) -> None:
    db = archive(tmp_path, ARCHIVE)
    out = as_person(db, "Jonas", "checkin Jonas", "itsme 2")
    assert "1 to 1" not in out
    assert "only one person of that name: say `itsme` alone." in out


def test_a_utc_series_shows_its_time_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cafe.db'}"
    out = cafebot(
        "shell", "--db", db, "--organizer", stdin="add meeting 2031-06-24 16:00\n", cwd=tmp_path
    ).stdout
    assert "Added a Collaboration Cafe on 2031-06-24, Tue 24 Jun 2031, 16:00 UTC." in out
    assert "16:00 UTC (16:00 UTC)" not in out


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        pytest.param("22/12/2031", "`2031-12-22`", id="day-first"),
        pytest.param("12/22/2031", "`2031-12-22`", id="month-first"),
        pytest.param("05/06/2031", "`2031-06-05` or `2031-05-06`", id="ambiguous"),
        pytest.param("2031/12/22", "`2031-12-22`", id="slashes"),
        pytest.param("22.12.2031", "`2031-12-22`", id="dots"),
    ],
)
def test_a_date_written_another_way_gets_its_iso_form(
    tmp_path: Path, written: str, meant: str
) -> None:
    db = f"sqlite:///{tmp_path / 'cafe.db'}"
    out = cafebot(
        "shell", "--db", db, "--organizer", stdin=f"add meeting {written} 4pm\n", cwd=tmp_path
    ).stdout
    assert (
        f"'{written}' is a date written another way: here dates are year-month-day, {meant}" in out
    )
    assert "last or next" not in out


def test_counts_in_the_import_summary_agree_with_their_number(tmp_path: Path) -> None:
    path = tmp_path / "2031.md"
    path.write_text(ARCHIVE, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'cafe.db'}"
    out = cafebot("archive", "import", "--db", db, str(path), cwd=tmp_path).stdout
    assert "2031-05-20: 3 check-ins, 0 introductions, 0 shout-outs, 1 agenda item, " in out
    assert "0 free-text blocks" in out


# Every reply the bot gives, read against the house rules of its wording.
STYLE_RULES = [
    (
        r"\b1 (?:check-ins|introductions|shout-outs|items|agenda items|meetings|people|entries"
        r"|notes|minutes|rows|tables|blocks)\b",
        "a count of one with a plural",
    ),
    (r"needs <\w+>", "a placeholder in a sentence"),
    (r"(\b\d\d:\d\d UTC\b) \(\1\)", "a time repeated"),
    (r"\b(\w+) \1\b", "a word twice"),
    (r"Traceback|Error:|Exception", "a traceback"),
]


def test_every_reply_template_keeps_to_the_house_rules(tmp_path: Path) -> None:
    import re

    from cafebot.bot.app import App  # noqa: F401 - registers every command
    from cafebot.commands.registry import REGISTRY

    lines = []
    for spec in REGISTRY:
        lines += [spec.name, f"{spec.name} ???", f"{spec.name} A99 x", *spec.examples]
    db = f"sqlite:///{tmp_path / 'cafe.db'}"
    stdin = "".join(f"{line}\n" for line in lines)
    out = cafebot("shell", "--db", db, "--organizer", stdin=stdin, cwd=tmp_path).stdout
    replies = [line for line in out.splitlines() if not line.startswith("Usage:")]
    assert len(replies) > len(lines)  # everything was answered
    for pattern, what in STYLE_RULES:
        bad = [line for line in replies if re.search(pattern, line)]
        assert not bad, f"{what}: {bad[:5]}"


# ---------------------------------------------------------------- 7. names at past meetings


def daily_config(tmp_path: Path) -> tuple[Path, str]:
    """A series that meets daily, ten minutes from now: its meeting can be held now."""
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    config = tmp_path / "config.ini"
    config.write_text(
        f"[database]\nurl = sqlite:///{tmp_path / 'cafe.db'}\n\n"
        f"[series:cafe]\nname = Collaboration Cafe\nschedule = FREQ=DAILY\n"
        f"start = {soon:%H:%M}\ntimezone = UTC\n",
        encoding="utf-8",
    )
    return config, soon.date().isoformat()


def test_a_new_name_leaves_past_meetings_with_the_name_they_had(tmp_path: Path) -> None:
    config, first = daily_config(tmp_path)
    script = [
        "checkin Zoe / @zoe / Lab",
        "agenda 5m Old item",
        "shoutout Thanks all",
        "start",
        "end",
        "checkin Zoë 🎉 / @zoe / Lab",
        "agenda 5m New item",
        "search item",
    ]
    stdin = "".join(f"{line}\n" for line in script)
    out = cafebot("shell", "--config", str(config), "--organizer", stdin=stdin, cwd=tmp_path).stdout
    assert f"- **{first}/A1** (5 min) Old item — Zoe\n" in out  # as at that meeting
    assert "/A2** (5 min) New item — Zoë 🎉" in out
    notes = cafebot("shell", "--config", str(config), stdin=f"notes {first}\n", cwd=tmp_path).stdout
    assert "- [name=Zoe] Thanks all" in notes
    assert "[name=Zoe] (5 min): Old item" in notes
    assert "Zoë" not in notes


def test_unicode_emoji_go_into_the_archive_as_shortcodes(tmp_path: Path) -> None:
    out = shell(tmp_path, "checkin Zoë 🎉 / @zoe", "shoutout Thanks 🎉 all 🚀", "notes")
    assert "- Zoë :tada: / @zoe" in out
    assert "- [name=Zoë :tada:] Thanks :tada: all :rocket:" in out
    assert "🎉" not in out.split("### Check-in", 1)[1]  # the notes themselves

"""A cafe for the site's tests: the sample archive imported, and a next meeting in the making.

The clock stands at Friday 1 August 2031 (Berlin noon); the archive's meetings (January to
July 2031) are published, and the next meeting, Tuesday 19 August 2031 at 16:00 CEST
(14:00 UTC), has three agenda items and two check-ins. One item and one earlier meeting
hold hostile text (a ``<script>``, an ``onerror=``), which no page may run.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import replace
from pathlib import Path

import emoji

from cafebot.core.config import ZulipSettings
from cafebot.notes.importer import import_file
from tests.harness import ADA, BOB, CAFE, OLGA, Harness

ROOT = Path(__file__).resolve().parents[1]
#: The sample archive issue 15 names for the site's tests: ``../shared/examples/`` beside the
#: project (CI has it there, as it has ``../shared/zulip-api`` for tests/zulipspec.py), or
#: where ``CAFEBOT_SAMPLE_ARCHIVE`` points. It is read where it is, never copied into
#: tests/fixtures (test_archive.py::test_fixtures_are_our_own).
SAMPLE = Path(
    os.environ.get(
        "CAFEBOT_SAMPLE_ARCHIVE", ROOT.parent / "shared" / "examples" / "sample-archive.md"
    )
)


class SampleMissing(AssertionError):
    """The sample archive is not there: the site's tests cannot run (and must not skip)."""


def sample_archive() -> Path:
    """:data:`SAMPLE`, which must be there: the tests fail rather than skip without it."""
    if not SAMPLE.is_file():
        raise SampleMissing(
            f"{SAMPLE} is missing: the site's tests import the sample archive from "
            f"../shared/examples/sample-archive.md beside the project (CI has it; set "
            f"CAFEBOT_SAMPLE_ARCHIVE to point elsewhere). They fail rather than skip without it."
        )
    return SAMPLE


AUG_1 = dt.datetime(2031, 8, 1, 10, 0, tzinfo=dt.UTC)
NEXT = dt.date(2031, 8, 19)
NEXT_UTC = dt.datetime(2031, 8, 19, 14, 0, tzinfo=dt.UTC)
ZULIP_SITE = "https://chat.example.org"

SCRIPT = "<script>window.__pwned = 1</script>"
ONERROR = '<img src=x onerror="window.__pwned = 2">'
HOSTILE_ARCHIVE = f"""# 2030 Collaboration Cafe Notes Archive

## 2030-12-16

### Check-in :raising_hand:

- Mallory / @mallory / {ONERROR}

### Agenda :clock2:

- [name=Mallory] (5 min): Hostile topic {SCRIPT}
    - **Decision** - [click](javascript:window.__pwned=3) and {ONERROR}
"""


def make_cafe(tmp: Path) -> Harness:
    """The cafe described above, on a SQLite file in ``tmp``."""
    h = Harness(f"sqlite:///{tmp / 'cafe.db'}", series=(CAFE,), now=AUG_1)
    h.app.settings = replace(h.app.settings, zulip=ZulipSettings(site=ZULIP_SITE))
    hostile = tmp / "2030.md"
    hostile.write_text(HOSTILE_ARCHIVE, encoding="utf-8")
    with h.app.unit_of_work() as session:
        for path in (sample_archive(), hostile):
            import_file(session, CAFE, path, AUG_1)
    for text, who in (
        ("agenda 10m Release plans", ADA),
        ("agenda (5-10 mins) Docs sprint", BOB),
        (f"agenda 50m Governance review {SCRIPT} {ONERROR}", OLGA),
        ("checkin Ada Lovelace / @ada / Analytical Engines", ADA),
        ("checkin Bob Builder / @bob", BOB),
    ):
        answer = h.send(text, who)
        assert answer.reactions or answer.replies, text
    return h


# ---------------------------------------------------------------- the archive file, read apart

_SECTIONS = (("check-in", "C"), ("introduc", "I"), ("celebrations", "S"), ("agenda", "A"))


def visible(line: str) -> str:
    """What a reader sees of one Markdown line of the archive (markup gone, emoji drawn)."""
    s = re.sub(r"^\s*[-*]\s?", "", line)
    s = re.sub(r"\[name=([^\]]+)\]", r"\1", s)
    s = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", s)
    s = s.replace("**", "").replace("`", "")
    s = re.sub(r"(?<![\w])_(.+?)_(?![\w])", r"\1", s)
    s = re.sub(r":[a-z0-9_+-]+:", lambda m: emoji.emojize(m.group(0), language="alias"), s)
    return " ".join(s.split())


def entries_in_file(text: str) -> dict[str, dict[str, str]]:
    """Each meeting's entries as the file has them: ``{date: {ref: visible text}}``.

    Read with no help from cafebot: a top-level bullet of a standard section is an
    entry (an italic prompt bullet is not, nor a bullet in a ``:::`` block or under a
    ``####`` subsection); deeper bullets belong to the entry above them.
    """
    meetings: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    letter: str | None = None
    counts: dict[str, int] = {}
    ref: str | None = None
    in_block = False
    for line in text.split("\n"):
        if m := re.match(r"^## (\d{4}-\d{2}-\d{2})", line):
            current = meetings.setdefault(m.group(1), {})
            counts, letter, ref = {}, None, None
            continue
        if line.startswith("### "):
            heading = line[4:].lower()
            letter = next((c for word, c in _SECTIONS if heading.startswith(word)), None)
            ref = None
            continue
        if line.startswith("#### "):
            letter, ref = None, None
            continue
        if line.startswith(":::"):
            in_block = line.strip() != ":::"  # a block opens with its kind, closes bare
            ref = None
            continue
        if current is None or letter is None or in_block:
            continue
        bullet = re.match(r"^(\s*)[-*](\s|$)", line)
        if bullet and not bullet.group(1):
            if re.match(r"^- _[^_]+_\s*$", line) and letter == "C":
                continue  # the check-in prompt
            counts[letter] = counts.get(letter, 0) + 1
            ref = f"{letter}{counts[letter]}"
            current[ref] = visible(line)
        elif bullet and ref is not None:
            current[ref] = " ".join(p for p in (current[ref], visible(line)) if p)
        elif line.strip() and not line[0].isspace():
            ref = None
    return meetings

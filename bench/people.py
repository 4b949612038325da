"""How much of an archive's lists the importer recognises: per known section, the share
of list items that become records.

    python bench/people.py [--sample ../shared/examples/sample-archive.md]

For the sample archive (``../shared/examples/sample-archive.md`` beside the project) and
for a generated ten-year archive (bench/archive.py's 120 meetings, with its check-ins and
introductions written in the drifted forms the community's archive has: names as links,
`` - `` and `` — `` separators, bold names, handles as profile links or without ``@``),
it prints, for each known section (check-ins, introductions, shout-outs, agenda), the
top-level list items found there (a section's italic prompt bullet is template, not an
item), how many of them became records, and the share. Items under a ``####``
subsection or inside a ``:::spoiler`` block are no items of the section.

The output goes in bench/RESULTS.md ("Who is recognised").
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.archive import NAMES, handle, year_files  # noqa: E402
from cafebot.notes.reader import _MD, _section_kind, parse_archive  # noqa: E402
from cafebot.notes.records import AGENDA, CHECKIN, INTRO, PROMPT, SHOUTOUT  # noqa: E402

SECTIONS = ((CHECKIN, "check-ins"), (INTRO, "introductions"), (SHOUTOUT, "shout-outs"))
SECTIONS += ((AGENDA, "agenda items"),)
SAMPLE = ROOT.parent / "shared" / "examples" / "sample-archive.md"


def list_items(source: str) -> Counter[str]:
    """Top-level list items per known section of one meeting's source."""
    found: Counter[str] = Counter()
    section: str | None = None
    tokens = _MD.parse(source)
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            level = int(token.tag[1])
            if level <= 3:
                text = tokens[index + 1].content if level == 3 else ""
                section = _section_kind(text) if level == 3 else None
            else:
                section = None  # a #### subsection's lists are its own
        elif token.type == "list_item_open" and token.level == 1 and section is not None:
            found[section] += 1
    return found


def _linked(name: str | None) -> bool:
    return name is not None and "](" in name


def shares(text: str) -> dict[str, tuple[int, int, int]]:
    """(items, records, records named by a link's Markdown rather than the person's name)
    per known section, over every meeting of one file's text."""
    totals = {kind: [0, 0, 0] for kind, _ in SECTIONS}
    for meeting in parse_archive(text).meetings:
        items = list_items(meeting.source)
        prompts = Counter(
            b.section for b in meeting.blocks if b.kind == PROMPT and b.text.lstrip()[:1] in "-*+"
        )
        records = {
            CHECKIN: len(meeting.checkins),
            INTRO: len(meeting.intros),
            SHOUTOUT: len(meeting.shoutouts),
            AGENDA: len(meeting.items),
        }
        linked = {
            CHECKIN: sum(_linked(c.name) for c in meeting.checkins),
            INTRO: sum(_linked(i.name) for i in meeting.intros),
        }
        for kind, _ in SECTIONS:
            totals[kind][0] += items[kind] - prompts[kind]
            totals[kind][1] += records[kind]
            totals[kind][2] += linked.get(kind, 0)
    return {kind: (n, r, k) for kind, (n, r, k) in totals.items()}


# ---------------------------------------------------------------- the drifted archive

_HEADING_RE = re.compile(r"^###\s")
_CHECKIN_RE = re.compile(r"^- (?P<name>[^/]+?)(?: / @(?P<handle>[\w-]+))?(?: / (?P<aff>.+))?$")
_INTRO_RE = re.compile(r"^- (?P<name>[^:]+): (?P<text>.*)$")


def _checkin(rng: random.Random, line: str) -> str:
    m = _CHECKIN_RE.match(line)
    if m is None or m.group("name").startswith("_"):
        return line
    name, github, aff = m.group("name"), m.group("handle"), m.group("aff")
    link = f"[{name}](https://example.org/people/{handle(name)})"
    forms = [f"- {link}", f"- {name}"]
    if github:
        forms = [
            f"- {link} / @{github}",
            f"- {name} / {github}",
            f"- {name} / [{github}](https://github.com/{github})",
            f"- {name} / https://github.com/{github}",
            f"- {name} / @{github}",
        ]
    form = rng.choice(forms)
    return f"{form} / {aff}" if aff else form


def _intro(rng: random.Random, line: str) -> str:
    m = _INTRO_RE.match(line)
    if m is None:
        return line
    name, text = m.group("name"), m.group("text")
    return rng.choice(
        [
            f"- {name}: {text}",
            f"- [{name}](https://example.org/people/{handle(name)}): {text}",
            f"- {name} - {text}",
            f"- {name} \u2014 {text}",
            f"- **{name}** {text}",
            f"- `{handle(name)}` \u2014 {text}",
        ]
    )


def drifted(text: str, rng: random.Random) -> str:
    """bench/archive.py's text with its check-ins and introductions in drifted forms."""
    out, section = [], None
    for line in text.split("\n"):
        if _HEADING_RE.match(line) or line.startswith("## "):
            section = _section_kind(line[4:]) if line.startswith("### ") else None
        elif section == CHECKIN and line.startswith("- "):
            line = _checkin(rng, line)
        elif section == INTRO and line.startswith("- "):
            line = _intro(rng, line)
        out.append(line)
    return "\n".join(out)


def generated() -> list[str]:
    rng = random.Random(16)  # noqa: S311 - made-up notes, not secrets
    with tempfile.TemporaryDirectory() as tmp:
        return [drifted(p.read_text(encoding="utf-8"), rng) for p in year_files(Path(tmp))]


def table(label: str, texts: list[str]) -> list[str]:
    totals = {kind: [0, 0, 0] for kind, _ in SECTIONS}
    for text in texts:
        for kind, counts in shares(text).items():
            for i, value in enumerate(counts):
                totals[kind][i] += value
    lines = [
        f"{label}",
        "",
        "| section | list items | records | share | of them named `[Name](…)`, not Name |",
        "|---|---|---|---|---|",
    ]
    for kind, name in SECTIONS:
        n, r, k = totals[kind]
        share = f"{100 * r / n:.1f}%" if n else "-"
        lines.append(f"| {name} | {n} | {r} | {share} | {k if kind in (CHECKIN, INTRO) else '-'} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    args = parser.parse_args()
    out: list[str] = []
    if args.sample.exists():
        out += table(f"Sample archive ({args.sample.name})", [args.sample.read_text("utf-8")])
        out.append("")
    else:
        out += [f"(no sample archive at {args.sample})", ""]
    out += table(
        f"Generated ten-year archive (bench/archive.py, drifted people; {len(NAMES)} people, "
        "120 meetings)",
        generated(),
    )
    out.append(f"\n{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

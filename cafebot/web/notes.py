"""A meeting's notes as HTML, from the same records (and the same Markdown) as the archive file.

The archive flavour of :func:`cafebot.notes.render.render` is what the archive file
holds for the meeting (an imported meeting's own source, until the bot changes it);
this module turns that Markdown into HTML with markdown-it-py:

- bullet indentation becomes its nesting depth first (``normalise``, fidelity rule 2 of
  notes-format.md), so the pad's 8-space nested bullets are nested lists here too;
- the pad's ``[name=Who]`` author tag is an attribution, ``:::spoiler Title`` a
  ``<details>`` disclosure, ``:shortcode:`` the emoji (GitHub's and Zulip's names), bare
  URLs links (linkify), ``####`` subsections carry the slug anchors the items link to;
- every entry gets the anchor of its reference (``id="A2"``, ``id="C1"``; a note under
  an item ``id="A2.1"``), found by the archive reader, which says on which line each
  entry stands;
- nothing a participant wrote becomes markup: raw HTML is off (shown as text), links
  with a ``javascript:`` (or similar) target are not links, images are not loaded, and
  neither an e-mail address nor a Zulip user id (``@**Name|42**``) is shown.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import emoji
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.container import container_plugin

from cafebot.core.config import SeriesSettings
from cafebot.notes.reader import parse_archive
from cafebot.notes.records import AGENDA, CHECKIN, INTRO, SHOUTOUT, ArchiveError, normalise
from cafebot.notes.render import Flavour, render
from cafebot.storage.models import Meeting, NoteKind

_KIND_LETTER = {CHECKIN: "C", INTRO: "I", SHOUTOUT: "S", AGENDA: "A"}

# Zulip's names for a few emoji that GitHub's (and the emoji package's) do not know.
_ZULIP_EMOJI = {"time": "🕑", "check": "✅", "working_on_it": "🛠️", "octopus": "🐙"}
_SHORTCODE_RE = re.compile(r":([a-z0-9_+-]{1,50}):")
_NAME_TAG_RE = re.compile(r"\[name=([^\]\n]{1,200})\]")
_MENTION_RE = re.compile(r"@_?\*\*([^*|\n]{1,100})(?:\|\d+)?\*\*")
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
EMAIL_HIDDEN = "(e-mail address hidden)"


def _emoji(name: str) -> str | None:
    if name in _ZULIP_EMOJI:
        return _ZULIP_EMOJI[name]
    char = emoji.emojize(f":{name}:", language="alias")
    return None if char == f":{name}:" else char


# ---------------------------------------------------------------- inline rules


def _inline_rule(
    opening: str, pattern: re.Pattern[str], kind: str, content: Callable[[str], str | None]
) -> Callable[[StateInline, bool], bool]:
    """An inline rule: where the text at the position opens with ``opening`` and
    ``pattern`` matches, a ``kind`` token holding ``content(group 1)`` (None: no match)."""

    def rule(state: StateInline, silent: bool) -> bool:
        if not state.src.startswith(opening, state.pos):
            return False
        m = pattern.match(state.src, state.pos)
        if m is None or (text := content(m.group(1))) is None:
            return False
        if not silent:
            token = state.push(kind, "span", 0)
            token.content = text
            token.meta = {"name": m.group(1)}
        state.pos = m.end()
        return True

    return rule


# ``[name=Who]``: the pad's author tag, shown as the name.
_name_tag = _inline_rule("[name=", _NAME_TAG_RE, "cafe_name", str.strip)
# ``:tada:``: the emoji, where the name is one GitHub's or Zulip's shortcodes know.
_shortcode = _inline_rule(":", _SHORTCODE_RE, "cafe_emoji", _emoji)
# A Zulip mention (``@**Ada|42**``, ``@_**Ada**``): the name only, never the user id.
_mention = _inline_rule("@", _MENTION_RE, "cafe_mention", str.strip)


def _hide_emails(state: StateCore) -> None:
    """No e-mail address on the site: in text, and as a link (linkify makes ``mailto:``)."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        skip = 0
        for token in block.children:
            if skip:
                skip -= 1 if token.type == "link_close" else 0
                continue
            if token.type == "link_open" and str(token.attrGet("href") or "").startswith("mailto:"):
                hidden = Token("text", "", 0)
                hidden.content = EMAIL_HIDDEN
                children.append(hidden)
                skip = 1
                continue
            if token.type in ("text", "code_inline"):
                token.content = _EMAIL_RE.sub(EMAIL_HIDDEN, token.content)
            children.append(token)
        block.children = children


# ---------------------------------------------------------------- renderer rules


def _render_span(css: str, prefix: str = "") -> Any:
    """A renderer rule that writes the token's content, escaped, in a ``<span>``."""

    def rule(
        self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        return f'<span class="{css}">{prefix}{escapeHtml(tokens[idx].content)}</span>'

    return rule


def _render_emoji(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    name = escapeHtml(str(token.meta.get("name", "")))
    return f'<span class="emoji" title=":{name}:">{escapeHtml(token.content)}</span>'


def _render_spoiler(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    if token.nesting == 1:
        title = token.info.strip()[len("spoiler") :].strip() or "Details"
        return f'<details class="spoiler"><summary>{escapeHtml(title)}</summary>\n'
    return "</details>\n"


def _slug(title: str) -> str:
    """A heading's anchor as the pads and GitHub write it: ``#voices-survey-update``."""
    words = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return re.sub(r"\s", "-", words).strip("-")


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False})
    md.enable(["linkify", "strikethrough", "table"])
    md.disable("image")  # a participant's image would load from anywhere: a link is enough
    md.linkify.set({"fuzzy_email": False, "fuzzy_link": False})  # type: ignore[union-attr]
    container_plugin(md, "spoiler", render=_render_spoiler)
    # The long-form subsections (####) an item links to, as the pad's slugs: #voices-update.
    anchors_plugin(md, min_level=3, max_level=6, slug_func=_slug)
    md.inline.ruler.before("link", "cafe_name", _name_tag)
    md.inline.ruler.before("emphasis", "cafe_mention", _mention)
    md.inline.ruler.push("cafe_emoji", _shortcode)
    md.core.ruler.push("cafe_hide_emails", _hide_emails)
    md.add_render_rule("cafe_name", _render_span("who"))
    md.add_render_rule("cafe_emoji", _render_emoji)
    md.add_render_rule("cafe_mention", _render_span("mention", "@"))
    return md


_MD = _parser()


# ---------------------------------------------------------------- the notes


@dataclass(frozen=True)
class NotesHtml:
    html: str  # the sections of the meeting, without its date heading
    anchors: tuple[str, ...]  # the references that have an anchor, in the order of the page


def markdown_html(text: str) -> str:
    """Free Markdown (a block of text) as safe HTML, with the notes' rules."""
    return str(_MD.render(text))


def meeting_html(meeting: Meeting, series: SeriesSettings) -> NotesHtml:
    """The meeting's notes, as the archive file has them, in HTML with an anchor per entry.

    The HTML is a pure function of the Markdown and the references, so it is kept for
    the pages asked for again (a published meeting rarely changes).
    """
    refs = _refs_in_order(meeting)
    key = tuple((section, tuple(values)) for section, values in refs.by_section.items())
    notes = tuple((ref, tuple(values)) for ref, values in refs.notes.items())
    return _html(normalise(render(meeting, Flavour.ARCHIVE, series)), key, notes)


@functools.lru_cache(maxsize=512)
def _html(
    text: str,
    by_section: tuple[tuple[str, tuple[str, ...]], ...],
    notes: tuple[tuple[str, tuple[str, ...]], ...],
) -> NotesHtml:
    tokens = _MD.parse(text)
    refs = _Refs(
        {section: list(values) for section, values in by_section},
        {ref: list(values) for ref, values in notes},
    )
    anchors = _place_anchors(text, tokens, refs)
    body = _without_date_heading(tokens)
    for token in body:
        if token.type in ("heading_open", "heading_close"):
            level = int(token.tag[1])
            token.tag = f"h{max(2, level - 1)}"  # the page's title is the meeting's h1
    html = _MD.renderer.render(body, _MD.options, {})
    return NotesHtml(str(html), anchors)


def _without_date_heading(tokens: list[Token]) -> list[Token]:
    if len(tokens) >= 3 and tokens[0].type == "heading_open" and tokens[0].tag == "h2":
        return tokens[3:]
    return tokens


@dataclass(frozen=True)
class _Refs:
    """The references of a meeting's entries, per section, in the order the notes show them;
    for an agenda item, also its notes' sub-references."""

    by_section: dict[str, list[str]]
    notes: dict[str, list[str]]


def _refs_in_order(meeting: Meeting) -> _Refs:
    archive = meeting.archive
    verbatim = archive is not None and archive.source is not None
    checkins = [f"C{c.ref}" for c in sorted(meeting.checkins, key=lambda c: c.ref)]
    intros = [f"I{i.ref}" for i in sorted(meeting.introductions, key=lambda i: i.ref)]
    shouts = sorted(meeting.shoutouts, key=lambda s: s.ref)
    if not verbatim:
        # The renderer's order: shout-outs without a project, then each project's.
        groups: dict[str, list[int]] = {}
        for s in shouts:
            if s.project and s.project.strip():
                groups.setdefault(s.project.strip().casefold(), []).append(s.ref)
        order = [s.ref for s in shouts if not (s.project and s.project.strip())]
        order += [ref for refs in groups.values() for ref in refs]
        by_ref = {s.ref: s for s in shouts}
        shouts = [by_ref[r] for r in order]
    items = sorted(meeting.agenda_items, key=lambda i: (i.position, i.ref))
    notes = {
        f"A{item.ref}": [
            f"A{item.ref}.{n.position}"
            for n in sorted(item.notes, key=lambda n: n.position)
            if n.text.strip() or n.kind is not NoteKind.NOTE
        ]
        for item in items
    }
    return _Refs(
        {
            CHECKIN: checkins,
            INTRO: intros,
            SHOUTOUT: [f"S{s.ref}" for s in shouts],
            AGENDA: [f"A{i.ref}" for i in items],
        },
        notes,
    )


def _place_anchors(text: str, tokens: list[Token], refs: _Refs) -> tuple[str, ...]:
    """Give each entry's list item the id of its reference; the ids placed, in order.

    The archive reader says where each entry stands. Where a section of the text holds
    other entries than the records (it should not happen), that section gets no anchors
    rather than wrong ones.
    """
    try:
        parsed = parse_archive(text).meetings
    except ArchiveError:
        return ()
    if len(parsed) != 1:
        return ()
    at_line: dict[int, str] = {}
    for section in _KIND_LETTER:
        lines = [line for kind, line in parsed[0].entry_lines if kind == section]
        wanted = refs.by_section[section]
        if len(lines) == len(wanted):
            at_line.update(zip(lines, wanted, strict=True))
    placed: list[str] = []
    for index, token in enumerate(tokens):
        if token.type != "list_item_open" or token.map is None:
            continue
        ref = at_line.get(token.map[0])
        if ref is None:
            continue
        token.attrSet("id", ref)
        token.attrJoin("class", "entry")
        placed.append(ref)
        for sub in _note_anchors(tokens, index, refs.notes.get(ref, [])):
            placed.append(sub)
    return tuple(placed)


def _note_anchors(tokens: list[Token], index: int, wanted: list[str]) -> list[str]:
    """The sub-references of an item's notes: its last nested bullets (the notes come after
    any further lines of the topic)."""
    if not wanted:
        return []
    item = tokens[index]
    children: list[Token] = []
    for token in tokens[index + 1 :]:
        if token.type == "list_item_close" and token.level == item.level:
            break
        if token.type == "list_item_open" and token.level == item.level + 2:
            children.append(token)
    if len(children) < len(wanted):
        return []
    placed = []
    for token, ref in zip(children[len(children) - len(wanted) :], wanted, strict=True):
        token.attrSet("id", ref)
        placed.append(ref)
    return placed

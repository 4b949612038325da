"""cafebot.core.text: user text made safe to repeat in chat and in the notes."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from cafebot.core.text import (
    WILDCARDS,
    clean,
    escape_html,
    escape_line_start,
    fragment,
    inline,
    lines_of,
    mention_name_safe,
    name_tag_safe,
    one_line,
    silence_mentions,
    strong,
    text_lines,
)

# Zulip's own mention patterns (zerver/lib/mention.py), without their look-behind:
# every match that is not silent would ping someone (or everyone).
ZULIP_USER_MENTION = re.compile(r"@(?P<silent>_?)\*\*(?P<name>[^*]+)\*\*")
ZULIP_GROUP_MENTION = re.compile(r"@(?P<silent>_?)\*(?P<name>[^*]+)\*")

# Pieces of text that mean something to Markdown, Zulip or the pad.
HOSTILE = [
    "# heading",
    "#",
    "###### six",
    "@**all**",
    "@**everyone**",
    "@**stream**",
    "@**channel**",
    "@**topic**",
    "@*admins*",
    "@_**all**",
    "- x",
    "* x",
    "+ x",
    "1. x",
    "1) x",
    "```",
    "~~~",
    ":::spoiler",
    "> quote",
    "<div>",
    "</div>",
    "<!--",
    "|a|b|",
    "---",
    "--",
    "===",
    "[x]: http://e.org",
    "    code",
    "\t",
    "\n",
    "\r",
    "\u2028",
    "**",
    "*",
    "_",
    "`",
    "\\",
    "[",
    "]",
    "@",
    "\x00",
    "\x1b",
    "/poll",
]
user_text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=6)), max_size=6).map(
    "".join
)

# The pad's Markdown: CommonMark with HTML, plus tables.
PAD = MarkdownIt("commonmark").enable("table")


def loud_mentions(text: str) -> list[str]:
    """The user and group mentions in ``text`` that are not silent."""
    found = [m.group() for m in ZULIP_USER_MENTION.finditer(text) if not m.group("silent")]
    found += [m.group() for m in ZULIP_GROUP_MENTION.finditer(text) if not m.group("silent")]
    return found


def block_types_in_bullet(content: str) -> list[str]:
    """The block tokens the pad makes of ``- content``, inside the list item."""
    tokens = PAD.parse(f"- {content}\n")
    return [t.type for t in tokens if t.level >= 2 and t.block and t.type != "inline"]


# ---------------------------------------------------------------- mentions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("@**Ada Lovelace**", "@_**Ada Lovelace**", id="user"),
        pytest.param("@**Ada|42** hi", "@_**Ada|42** hi", id="user-with-id"),
        pytest.param("@_**Ada**", "@_**Ada**", id="already-silent"),
        pytest.param("@*admins*", "@_*admins*", id="group"),
        pytest.param("@*admins**", "@_*admins**", id="group-then-star"),
        pytest.param("x@**all**y", "x@_**all**y", id="glued"),
        pytest.param("@**a\nb**", "@_**a\nb**", id="over-a-newline-as-zulip-reads-it"),
        pytest.param("@ **all**", "@ **all**", id="not-a-mention"),
        pytest.param("a@b.org", "a@b.org", id="email"),
    ],
)
def test_silence_mentions(text: str, expected: str) -> None:
    assert silence_mentions(text) == expected


@pytest.mark.parametrize("wildcard", WILDCARDS)
def test_wildcards_become_silent(wildcard: str) -> None:
    assert silence_mentions(f"hey @**{wildcard}**!") == f"hey @_**{wildcard}**!"


@given(user_text)
def test_silenced_text_pings_nobody(text: str) -> None:
    assert loud_mentions(silence_mentions(text)) == []
    assert loud_mentions(fragment(text)) == []


# ---------------------------------------------------------------- cleaning


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a\r\nb\rc", "a\nb\nc", id="line-ends"),
        pytest.param("a\x00b\x1b[31mc\x7f", "ab[31mc", id="control-chars"),
        pytest.param("a\tb", "a\tb", id="tab-kept"),
        pytest.param("a  \n\nb \n\n", "a\n\nb", id="trailing-space-and-blank-lines"),
        pytest.param("a\u2028b\u2029c", "a\nb\nc", id="unicode-line-separators"),
        pytest.param("a\ud800b", "ab", id="lone-surrogate"),
        pytest.param("👩\u200d💻 e\u0301", "👩\u200d💻 e\u0301", id="zwj-and-combining-kept"),
        pytest.param("\u200fשלום", "\u200fשלום", id="rtl-mark-kept"),  # noqa: RUF001 - Hebrew on purpose
        pytest.param("a\u202eb\u202cc\u2067d\u2069", "abcd", id="bidi-controls-dropped"),
    ],
)
def test_clean(text: str, expected: str) -> None:
    assert clean(text) == expected


def test_one_line_folds_all_white_space() -> None:
    assert one_line("  a\n\tb\u00a0 c\x00d \u2028 e ") == "a b cd e"


def test_fragment_is_one_silent_line() -> None:
    assert fragment("hi\n@**all**") == "hi @_**all**"


@given(st.text())
def test_clean_output_is_utf8_without_control_chars(text: str) -> None:
    out = clean(text)
    out.encode("utf-8")
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\r]", out)


# ---------------------------------------------------------------- line starts


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("# heading", "\\# heading", id="heading"),
        pytest.param("#", "\\#", id="bare-hash"),
        pytest.param("#hashtag", "#hashtag", id="hashtag-is-no-heading"),
        pytest.param("> quote", "\\> quote", id="quote"),
        pytest.param("- x", "\\- x", id="bullet"),
        pytest.param("* x", "\\* x", id="star-bullet"),
        pytest.param("+ x", "\\+ x", id="plus-bullet"),
        pytest.param("-", "\\-", id="bare-dash"),
        pytest.param("--", "\\--", id="two-dashes-make-a-rule-after-the-bullet"),
        pytest.param("---", "\\---", id="rule"),
        pytest.param("* * *", "\\* * *", id="star-rule"),
        pytest.param("===", "\\===", id="setext"),
        pytest.param("1. x", "1\\. x", id="ordered"),
        pytest.param("2) x", "2\\) x", id="ordered-paren"),
        pytest.param("12345678901. x", "12345678901\\. x", id="long-number"),
        pytest.param("1.5 hours", "1.5 hours", id="decimal"),
        pytest.param("```python", "\\```python", id="fence"),
        pytest.param("~~~", "\\~~~", id="tilde-fence"),
        pytest.param("[x]: http://e.org", "\\[x]: http://e.org", id="link-definition"),
        pytest.param("[^1]: note", "\\[^1]: note", id="footnote"),
        pytest.param("[a\\]b]: u", "\\[a\\]b]: u", id="link-definition-escaped-bracket"),
        pytest.param("[Docs](https://e.org): new", "[Docs](https://e.org): new", id="link"),
        pytest.param(":::spoiler x", "\\:::spoiler x", id="pad-container"),
        pytest.param("| a | b |", "\\| a | b |", id="table"),
        pytest.param("<div>", "\\<div>", id="html"),
        pytest.param("<3 all", "<3 all", id="heart"),
        pytest.param("<https://e.org> x", "<https://e.org> x", id="autolink"),
        pytest.param("    code", "code", id="indent"),
        pytest.param("plain", "plain", id="plain"),
        pytest.param("", "", id="empty"),
    ],
)
def test_escape_line_start(line: str, expected: str) -> None:
    assert escape_line_start(line) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(":::spoiler x", ":::spoiler x", id="no-pad-containers-on-zulip"),
        pytest.param("| a |", "| a |", id="one-row-is-no-table"),
        pytest.param("<div>", "<div>", id="zulip-shows-html-as-text"),
        pytest.param("# x", "\\# x", id="heading"),
        pytest.param("```spoiler", "\\```spoiler", id="zulip-spoiler"),
        pytest.param("/poll Which day?", "\\/poll Which day?", id="widget"),
    ],
)
def test_escape_line_start_for_zulip(line: str, expected: str) -> None:
    assert escape_line_start(line, zulip=True) == expected


@given(user_text)
def test_inline_text_stays_one_paragraph_in_a_bullet(text: str) -> None:
    content = inline(text)
    assert "\n" not in content
    assert set(block_types_in_bullet(content)) <= {"paragraph_open", "paragraph_close"}
    assert loud_mentions(content) == []


def test_inline() -> None:
    assert inline("  # Big\nnews @**all** ") == "\\# Big news @_**all**"


def test_text_lines_and_lines_of() -> None:
    text = "first @**all**\n\n  # second\n \x00 \n- third  "
    assert text_lines(text) == ["first @_**all**", "# second", "- third"]
    assert lines_of(text) == ["first @_**all**", "\\# second", "\\- third"]


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("Ines", "Ines", id="plain"),
        pytest.param("Eve] [name=Mallory", "Eve) (name=Mallory", id="brackets"),
        pytest.param("Bob\\", "Bob", id="backslash"),
        pytest.param("@**all**", "@_**all**", id="mention"),
        pytest.param(" Ada\nLovelace ", "Ada Lovelace", id="white-space"),
    ],
)
def test_name_tag_safe(name: str, expected: str) -> None:
    assert name_tag_safe(name) == expected


@given(user_text)
def test_name_tag_has_no_bracket(name: str) -> None:
    safe = name_tag_safe(name)
    assert not set(safe) & set("[]\\\n")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("Ines", "**Ines**", id="plain"),
        pytest.param("A*B", "**A\\*B**", id="star"),
        pytest.param("Bob\\", "**Bob\\\\**", id="backslash"),
        pytest.param("`x", "**\\`x**", id="backtick"),
        pytest.param("[a](https://e.org)", "**\\[a\\](https://e.org)**", id="link"),
        pytest.param("", "", id="empty"),
        pytest.param("@**all**", "**@_\\*\\*all\\*\\***", id="mention"),
        pytest.param("__# x__", "**\\_\\_# x\\_\\_**", id="double-underscore"),
        pytest.param("user_name", "**user_name**", id="one-underscore"),
    ],
)
def test_strong(name: str, expected: str) -> None:
    assert strong(name) == expected


@given(user_text)
def test_strong_name_is_one_bold_run(name: str) -> None:
    bold = strong(name)
    if not bold:
        return
    tokens = [t for t in PAD.parseInline(bold)[0].children or [] if t.type != "text" or t.content]
    types = [t.type for t in tokens]
    assert types[0] == "strong_open"
    assert types[-1] == "strong_close"
    assert types.count("strong_open") == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("Ada Lovelace", "Ada Lovelace", id="plain"),
        pytest.param(" Ada Lovelace ", "Ada Lovelace", id="outer-space"),
        pytest.param("李小龙", "李小龙", id="cjk"),
        pytest.param("Ada *Lovelace*", None, id="star"),
        pytest.param("Ada|42", None, id="bar"),
        pytest.param("Ada\nLovelace", None, id="newline"),
        pytest.param("", None, id="empty"),
    ],
)
def test_mention_name_safe(name: str, expected: str | None) -> None:
    assert mention_name_safe(name) == expected


# ---------------------------------------------------------------- HTML


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("<div>x</div>", "\\<div>x\\</div>", id="tags"),
        pytest.param("a <!-- b", "a \\<!-- b", id="comment"),
        pytest.param("the `<details>` tag", "the `<details>` tag", id="code-span"),
        pytest.param("``a`<b>``", "``a`<b>``", id="long-code-span"),
        pytest.param("`open <b>", "`open \\<b>", id="unclosed-backtick"),
        pytest.param("\\`<b>`", "\\`\\<b>`", id="escaped-backtick"),
        pytest.param("\\<b>", "\\<b>", id="already-escaped"),
        pytest.param("\\\\<b>", "\\\\\\<b>", id="escaped-backslash"),
        pytest.param("see <https://e.org/a`b>`<b>`", "see <https://e.org/a`b>`<b>`", id="autolink"),
        pytest.param("mail <a@b.org>", "mail <a@b.org>", id="email-autolink"),
        pytest.param("1 < 2 <3", "1 < 2 <3", id="not-tags"),
    ],
)
def test_escape_html(text: str, expected: str) -> None:
    assert escape_html(text) == expected


@given(user_text)
def test_escaped_text_has_no_raw_html(text: str) -> None:
    line = escape_html(fragment(text))
    tokens = PAD.parseInline(line)[0].children or []
    assert "html_inline" not in [t.type for t in tokens]


def test_clean_drops_exactly_the_control_characters_and_surrogates() -> None:
    """Every code point: clean() keeps it unless Unicode calls it a control character
    (category Cc; tab and the line ends stay) or a surrogate (Cs), or it is one of the
    bidi embedding, override and isolate controls."""
    bidi = {*range(0x202A, 0x202F), *range(0x2066, 0x206A)}
    for code in range(0x110000):
        char = chr(code)
        control = unicodedata.category(char) in ("Cc", "Cs") and char not in "\t\n\r"
        assert (clean(f"a{char}b") == "ab") is (control or code in bidi), hex(code)

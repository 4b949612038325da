"""The command registry: the signature is the grammar.

A command is a function registered with :func:`command`. Its first parameter
is the :class:`~cafebot.cafe.context.Context`; every further parameter is read off
the command's text by the converter its annotation names (``Estimate``,
``Ref`` ...), and a ``str`` parameter takes the rest of the line. ``X | None``
makes a parameter optional. Usage lines and help are generated from this.
"""

from __future__ import annotations

import difflib
import enum
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from cafebot.commands.converters import ConversionError, InvalidValue
from cafebot.commands.errors import UserError

if TYPE_CHECKING:
    from cafebot.core.chat import Chat
    from cafebot.core.services import Services

MAX_TEXT = 2000  # characters in one entry's text


class Who(enum.StrEnum):
    """Who may run a command (checked before it runs)."""

    ANYONE = "anyone"
    # Anyone may run it, but only on their own entries unless they organise (checked inside).
    OWNER = "the entry's author or an organiser"
    ORGANIZER = "organisers"


class Converter(Protocol):
    name: typing.ClassVar[str]
    example: typing.ClassVar[str]

    @classmethod
    def consume(cls, text: str) -> tuple[Any, str]: ...


@dataclass(frozen=True)
class Param:
    name: str
    converter: type[Converter] | None  # None: the rest of the text
    optional: bool

    @property
    def shown(self) -> str:
        label = self.converter.name if self.converter else self.name
        if label.startswith("[") or getattr(self.converter, "literal", False):
            return label  # already bracketed, like [project], or a literal word
        return f"[{label}]" if self.optional else f"<{label}>"


@dataclass(frozen=True)
class Outcome:
    """What a command gives back: reactions, a reply, or both.

    ``reactions``: Zulip emoji names, added in order (``check`` first for a done change;
    ``hourglass`` beside it when the agenda now needs more time than the meeting has).

    ``replan``: the command changed the schedule (the scheduler re-plans its jobs).
    ``after``: work to do once the command's transaction has committed, such as
    posting a notice or publishing; it opens its own units of work.
    """

    reply: str | None = None
    reactions: tuple[str, ...] = ()
    replan: bool = False
    after: Callable[[Services, Chat], None] | None = None


ACK = Outcome(reactions=("check",))
#: The second reaction of an agenda change that leaves the agenda longer than the meeting.
OVER_SLOT = "hourglass"
#: What a reaction other than the check means, where it is put in words (the terminal
#: shell; an acknowledgement folded into a reply when the bot is throttled).
REACTION_GLOSS = {OVER_SLOT: "the agenda now needs more time than the meeting has: see `list`"}


@dataclass(frozen=True)
class Spec:
    name: str
    func: Callable[..., Outcome]
    params: tuple[Param, ...]
    aliases: tuple[str, ...]
    summary: str
    details: str
    examples: tuple[str, ...]
    who: Who
    # What further lines of a message are: part of the text, or the agenda item's first notes.
    more_lines: str = "text"
    max_text: int = MAX_TEXT
    needs_series: bool = True
    group: str = "Entries"

    @property
    def usage(self) -> str:
        return " ".join([self.name, *(p.shown for p in self.params)])

    def parse(self, text: str, more: list[str]) -> dict[str, Any]:
        """Convert ``text`` (the first line, after the command word) into arguments."""
        args: dict[str, Any] = {}
        rest = text.strip()
        skipped: ConversionError | None = None  # why an optional value was not taken
        if self.more_lines == "notes":
            # Further lines become notes of their own: they keep to the same limit in all.
            extra = sum(len(line) for line in more)
            if extra > MAX_TEXT:
                raise UserError(
                    f"The lines after the first are {extra:,} characters long; the limit "
                    f"is {MAX_TEXT:,}. Please shorten them (`note` adds more later)."
                )
        for param in self.params:
            if param.converter is None:
                value = rest.strip()
                if self.more_lines == "text" and more:
                    value = "\n".join([value, *more]).strip()
                if not value:
                    if not param.optional:
                        raise UserError(f"`{self.name}` needs {param.shown} text.")
                    args[param.name] = None
                else:
                    if len(value) > self.max_text:
                        raise UserError(
                            f"That text is {len(value):,} characters long; "
                            f"the limit is {self.max_text:,}. Please shorten it."
                        )
                    args[param.name] = value
                rest = ""
                continue
            if not rest:
                if param.optional:
                    args[param.name] = None
                    continue
                raise UserError(f"`{self.name}` needs {param.shown}.")
            try:
                args[param.name], rest = param.converter.consume(rest)
            except ConversionError as exc:
                if param.optional and not isinstance(exc, InvalidValue):
                    args[param.name] = None
                    skipped = exc
                    continue
                raise UserError(f"{exc}.") from exc
        if rest.strip():
            if skipped is not None:
                raise UserError(f"{skipped}.")
            raise UserError(f"I did not understand '{rest.strip()[:80]}' after `{self.name}`.")
        return args


@dataclass
class Registry:
    specs: dict[str, Spec] = field(default_factory=dict)
    lookup: dict[str, Spec] = field(default_factory=dict)

    def add(self, spec: Spec) -> None:
        for word in (spec.name, *spec.aliases):
            if word in self.lookup:
                raise ValueError(f"command word {word!r} registered twice")
            self.lookup[word] = spec
        self.specs[spec.name] = spec

    def find(self, word: str) -> Spec | None:
        return self.lookup.get(word.lower())

    def suggest(self, word: str) -> str | None:
        close = difflib.get_close_matches(word.lower(), list(self.lookup), n=1, cutoff=0.6)
        return self.lookup[close[0]].name if close else None

    def __iter__(self) -> typing.Iterator[Spec]:
        return iter(self.specs.values())


REGISTRY = Registry()


def _params(func: Callable[..., Outcome]) -> tuple[Param, ...]:
    hints = typing.get_type_hints(func)
    names = list(inspect.signature(func).parameters)[1:]  # the first is the context
    params = []
    for name in names:
        hint = hints[name]
        optional = False
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            members = [a for a in typing.get_args(hint) if a is not type(None)]
            optional = len(members) < len(typing.get_args(hint))
            if len(members) != 1:
                raise TypeError(f"{func.__name__}.{name}: one type, or one type | None")
            hint = members[0]
        if hint is str:
            params.append(Param(name, None, optional))
        elif hasattr(hint, "consume"):
            params.append(Param(name, hint, optional))
        else:
            raise TypeError(f"{func.__name__}.{name}: no converter for {hint!r}")
    text_params = [p for p in params if p.converter is None]
    if (text_params and params[-1].converter is not None) or len(text_params) > 1:
        raise TypeError(f"{func.__name__}: only the last parameter may take the rest of the text")
    return tuple(params)


def command(
    name: str,
    *,
    aliases: tuple[str, ...] = (),
    examples: tuple[str, ...] = (),
    who: Who = Who.ANYONE,
    more_lines: str = "text",
    max_text: int = MAX_TEXT,
    needs_series: bool = True,
    group: str = "Entries",
    registry: Registry = REGISTRY,
) -> Callable[[Callable[..., Outcome]], Callable[..., Outcome]]:
    """Register a command; its docstring's first line is the summary, the rest its help."""

    def register(func: Callable[..., Outcome]) -> Callable[..., Outcome]:
        doc = inspect.cleandoc(func.__doc__ or "")
        if not doc or not examples:
            raise TypeError(f"command {name!r} needs a docstring and an example")
        summary, _, details = doc.partition("\n")
        # Paragraphs become single lines: chat clients wrap them themselves.
        details = "\n\n".join(" ".join(p.split()) for p in details.strip().split("\n\n"))
        registry.add(
            Spec(
                name=name,
                func=func,
                params=_params(func),
                aliases=aliases,
                summary=summary.strip(),
                details=details.strip(),
                examples=examples,
                who=who,
                more_lines=more_lines,
                max_text=max_text,
                needs_series=needs_series,
                group=group,
            )
        )
        return func

    return register


def usage_text(spec: Spec) -> str:
    example = spec.examples[0]
    return f"Usage: `{spec.usage}` — for example `{example}`"


def help_overview(registry: Registry = REGISTRY) -> str:
    lines = ["**cafebot commands** — say `help <command>` to learn more about one."]
    groups: dict[str, list[Spec]] = {}
    for spec in registry:
        groups.setdefault(spec.group, []).append(spec)
    for group, specs in groups.items():
        lines.append(f"\n**{group}**")
        for spec in specs:
            lines.append(f"- `{spec.usage}` — {spec.summary}")
    return "\n".join(lines)


def help_for(spec: Spec) -> str:
    lines = [f"**`{spec.usage}`** — {spec.summary}"]
    if spec.details:
        lines += ["", spec.details]
    if spec.aliases:
        lines += ["", "Also: " + ", ".join(f"`{a}`" for a in spec.aliases)]
    lines += ["", "Examples:"] + [f"- `{e}`" for e in spec.examples]
    lines += ["", f"Who may use it: {spec.who.value}."]
    return "\n".join(lines)


def unknown_command(word: str, registry: Registry = REGISTRY) -> UserError:
    guess = registry.suggest(word)
    hint = f" Did you mean `{guess}`?" if guess else ""
    return UserError(
        f"I don't know the command `{word[:40]}`.{hint} Say `help` for the list.",
        show_usage=False,
        example="agenda 10m Release plans",
    )

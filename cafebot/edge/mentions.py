"""Mentions by name resolved to Zulip user ids, as the bot's user directory knows them.

Zulip's compose box writes ``@**Bob Builder**``, with the id (``@**Bob Builder|12**``)
only where two users share the name. The bot reads the organisation's users at
``/register``: a name that one active user has gets that user's id, so that an
action's owner is a Zulip account the bot can write to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_NAME_ONLY_RE = re.compile(r"@(_?)\*\*(?P<name>[^*|\n]{1,100}?)\*\*")


def by_name(users: Mapping[int, Mapping[str, Any]]) -> dict[str, int | None]:
    """Full name (case-folded) -> user id; None where several active users share it."""
    found: dict[str, int | None] = {}
    for user_id, user in users.items():
        if user.get("is_active") is False or user.get("is_bot"):
            continue
        name = str(user.get("full_name") or "").casefold()
        if name:
            found[name] = None if name in found else user_id
    return found


def with_ids(content: str, names: Mapping[str, int | None]) -> str:
    """``content`` with each mention of a unique name given its user id."""

    def resolve(m: re.Match[str]) -> str:
        user_id = names.get(m.group("name").strip().casefold())
        if user_id is None:
            return m.group(0)
        return f"@{m.group(1)}**{m.group('name')}|{user_id}**"

    return _NAME_ONLY_RE.sub(resolve, content) if "@" in content else content

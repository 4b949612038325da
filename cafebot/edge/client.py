"""The ``zulip`` client as cafebot builds it: no retries of its own, the key kept out of logs.

The ``zulip`` client is built with ``retry_on_errors=False``: it would retry
every request on 5xx and connection errors, POSTs included, with a fixed 1 s
sleep, and it does not handle 429 at all. The retry policy is cafebot's
(:mod:`cafebot.edge.pacing`).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import requests
import zulip

from cafebot.core.chat import Message, SendFailed
from cafebot.core.config import ZulipSettings
from cafebot.edge.pacing import ZulipError

CLIENT_NAME = "cafebot"
# The feature level that brought POST /scheduled_messages (Zulip 7.0).
SCHEDULED_MESSAGES_LEVEL = 179
# What the zulip client raises when the server is not reached.
NETWORK_ERRORS: tuple[type[Exception], ...] = (
    requests.exceptions.RequestException,
    zulip.ZulipError,
)


class FatalError(ZulipError):
    """The bot cannot run (credentials refused, a request Zulip will never accept)."""


def make_client(settings: ZulipSettings) -> Any:
    """A ``zulip.Client`` that never retries by itself (it asks the server for its settings)."""
    if settings.zuliprc is not None:
        return zulip.Client(
            config_file=str(settings.zuliprc), retry_on_errors=False, client=CLIENT_NAME
        )
    return zulip.Client(
        email=settings.email,
        api_key=settings.key,
        site=settings.site,
        retry_on_errors=False,
        client=CLIENT_NAME,
    )


def clone(client: Any) -> Any:
    """Another client on the same account, with its own HTTP session (one per thread)."""
    twin = copy.copy(client)
    twin.session = None
    return twin


class RedactKey(logging.Filter):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret and self.secret in record.getMessage():
            record.msg = record.getMessage().replace(self.secret, "***")
            record.args = None
        return True


def upload_path(answer: dict[str, Any]) -> str:
    """Where ``POST /user_uploads`` put the file: ``/user_uploads/…``.

    zulip.yaml (feature level 266) answers it as ``uri``; newer servers add ``url`` (the
    same path) and ``filename``, and deprecate ``uri``: read ``url`` where it is given.
    """
    path = answer.get("url") or answer.get("uri")
    if not isinstance(path, str) or not path:
        raise SendFailed("Zulip's answer to the upload gave no address for the file")
    return path


def direct_to(user_id: int) -> Message:
    """A stand-in for a one-to-one conversation with ``user_id``: replying to it sends them a
    direct message (the bot is never among its participants)."""
    return Message(
        id=None,
        sender_id=user_id,
        sender_name="",
        sender_email="",
        content="",
        recipient_ids=(user_id,),
    )

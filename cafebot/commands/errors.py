"""Two kinds of error: :class:`UserError` is shown to the user; anything else is a bug."""

from __future__ import annotations


class UserError(Exception):
    """A problem with what the user asked: replied as is, with the command's usage.

    ``example`` overrides the command's own example when a more precise one helps.
    """

    def __init__(self, message: str, *, show_usage: bool = True, example: str | None = None):
        super().__init__(message)
        self.message = message
        self.show_usage = show_usage
        self.example = example


class PermissionDenied(UserError):
    """The user may not do this; the message says why and who may."""

    def __init__(self, message: str) -> None:
        super().__init__(message, show_usage=False)

"""What the lower layers need of the running application, as a protocol.

The application (:class:`cafebot.bot.app.App`) wires settings, the database
and the clock at the top. The command registry, the cafe's rules, publishing
and the outbox need those, but importing the App would make them depend on
the layer that depends on them; they type against :class:`Services` instead,
which the App satisfies.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.orm import Session

    from cafebot.core.clock import Clock
    from cafebot.core.config import Settings


class Services(Protocol):
    """Settings, the clock, units of work, and who to tell when the schedule or entries change."""

    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def schedule_listeners(self) -> list[Callable[[], None]]:
        """Called after a command changed the schedule (the scheduler re-plans its jobs)."""
        ...

    @property
    def change_listeners(self) -> list[Callable[[], None]]:
        """Called after a command, an edit or a delete took effect (held reminders follow)."""
        ...

    @property
    def site_builders(self) -> list[Callable[[Path], None]]:
        """Each writes the static site into the folder given (publishing with ``[web]
        site_dir`` and a ``git_remote`` calls them); none where nothing installed one."""
        ...

    def unit_of_work(self) -> AbstractContextManager[Session]:
        """A session in a transaction: committed when the block ends, rolled back on error."""
        ...

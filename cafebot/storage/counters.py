"""Numbers handed out from a counter column of a row: references, sub-references, actions.

One statement takes the numbers and moves the counter on, under the row's write lock on
every backend, so no two transactions get the same number; the object is told, without
becoming a change to flush.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value


def take_numbers(
    session: Session,
    row: Any,
    attr: str,
    count: int = 1,
    *,
    in_use: Callable[[], int] | None = None,
) -> int:
    """The first of ``count`` numbers from ``row``'s counter column ``attr``.

    ``in_use`` gives the highest number already taken, read once the counter is locked:
    a row restored from a backup made before the counter existed may lag behind it, and
    the numbers then start after it (the counter is moved on to match).
    """
    model = type(row)
    if row.id is None:  # not stored yet: nobody else can see it
        first = max(getattr(row, attr) or 1, (in_use() if in_use else 0) + 1)
        setattr(row, attr, first + count)
        return first
    column = getattr(model, attr)
    moved: int = (
        session.connection()
        .execute(
            update(model)
            .where(model.id == row.id)
            .values({column: func.coalesce(column, 1) + count})
            .returning(column)
        )
        .scalar_one()
    )
    first = max(moved - count, (in_use() if in_use else 0) + 1)
    if first + count != moved:
        moved = first + count
        session.connection().execute(
            update(model).where(model.id == row.id).values({column: moved})
        )
    set_committed_value(row, attr, moved)
    return first

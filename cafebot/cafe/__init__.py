"""The cafe's rules: meetings and schedules, entries, the agenda, people, the live
meeting, reminders (and those Zulip holds as scheduled messages), the scheduler's
jobs, search and the ICS feed.

Each feature module holds its ``@command`` functions and its queries. The rules may
import publishing, the notes, the command language, storage and the core; not the
dispatcher (``cafebot.bot``), the edge or the command line: what they need of the
application comes in as a ``cafebot.core.services.Services``.
"""

"""``cafebot run`` (the bot on Zulip) and ``cafebot shell`` (the bot in a terminal)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from cafebot.cli.common import settings_of

if TYPE_CHECKING:
    from cafebot.bot.app import App
    from cafebot.core.chat import Chat


def cmd_run(args: argparse.Namespace) -> int:
    import logging

    from cafebot.bot.app import App
    from cafebot.cafe.scheduler import start_lifecycle
    from cafebot.edge.transport import run
    from cafebot.ops.health import Heartbeat, heartbeat_path
    from cafebot.storage.leader import AnotherInstanceRunning, LeaderWatch, claim_instance

    log = logging.getLogger("cafebot")

    settings = settings_of(args)
    if not settings.zulip.configured:
        print(f"cafebot run: {settings.zulip.missing_text(settings.source)}", file=sys.stderr)
        return 2
    app = App.create(settings)  # brings the database to the latest revision
    from cafebot.web.build import rebuild_on_publish

    rebuild_on_publish(app)  # with [web] site_dir, publishing rebuilds the static site
    try:
        # SQLite: one bot per database. PostgreSQL: several may run (a rolling restart);
        # all handle commands, and only the leader runs the scheduler.
        leadership = claim_instance(app.engine)
    except AnotherInstanceRunning as exc:
        app.close()
        print(f"cafebot run: {exc}", file=sys.stderr)
        return 1
    heartbeat = Heartbeat(heartbeat_path(settings))
    stop_site = _serve_site(app, lambda: leadership.is_leader)
    if stop_site is None:
        leadership.release()
        app.close()
        return 1

    def on_ready(chat: Chat) -> Callable[[], None]:
        """Once the bot is live: the scheduler (reminders, ends, publishing), on the leader."""
        running: list[Callable[[], None]] = []

        def elected() -> None:
            log.info("this process leads: it runs the scheduler")
            running.append(start_lifecycle(app, chat, lambda: heartbeat.beat("scheduler")))

        def deposed() -> None:
            while running:
                running.pop()()
            heartbeat.forget("scheduler")

        watch = LeaderWatch(leadership, on_elected=elected, on_deposed=deposed)
        watch.start()
        return watch.stop

    try:
        return run(app, on_ready=on_ready, heartbeat=lambda: heartbeat.beat("events"))
    finally:
        stop_site()
        leadership.release()
        heartbeat.forget("events")
        app.close()


def _serve_site(app: App, leads: Callable[[], bool]) -> Callable[[], None] | None:
    """The site beside the bot when ``[web] listen`` is set: the function that stops it
    (one that does nothing without the setting); None (said why) if it cannot listen."""
    listen = app.settings.web.listen
    if listen is None:
        return lambda: None
    from cafebot.web.server import Background

    host, port = listen
    try:
        site = Background(app, host, port, leads)
    except OSError as exc:
        print(
            f"cafebot run: [web] listen = {host}:{port}: cannot listen there "
            f"({exc.strerror or exc})",
            file=sys.stderr,
        )
        return None
    return site.stop


def cmd_shell(args: argparse.Namespace) -> int:
    from cafebot.bot.app import App
    from cafebot.edge.shell import parse_identity, run_shell

    try:
        name, email = parse_identity(args.as_user)
    except ValueError as exc:
        print(f"cafebot shell: --as: {exc}", file=sys.stderr)
        return 2
    app = App.create(settings_of(args, quiet=True))
    try:
        return run_shell(app, name=name, email=email, organizer=args.organizer)
    finally:
        app.close()

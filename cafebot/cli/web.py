"""``cafebot web`` (the site, served) and ``cafebot site build`` (the site, as files)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cafebot.cli.common import settings_of


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "web",
        parents=[common],
        help="serve the read-only site: next meetings, every meeting's notes, the calendar feed",
        description="Serve the site of every series until SIGTERM or Ctrl-C: each series' next "
        "meeting, every meeting's notes at its permalink, the archive by year, search, the "
        "calendar feed (/<series>/calendar.ics) and /healthz. It listens on [web] listen, "
        "127.0.0.1:8080 by default; put a reverse proxy in front of it (deploy/).",
    )
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="where to listen (default: [web] listen, else 127.0.0.1:8080)",
    )
    p.set_defaults(func=cmd_web)

    p_site = sub.add_parser("site", help="the site as static files")
    site_sub = p_site.add_subparsers(dest="site_command", metavar="ACTION", required=True)
    p = site_sub.add_parser(
        "build",
        parents=[common],
        help="write the site's pages as static files (for GitHub Pages and the like)",
        description="Write the same pages `cafebot web` serves into DIR, as static files "
        "(search through a prebuilt index), for hosting on any static web host.",
    )
    p.add_argument("-o", "--output", metavar="DIR", required=True, help="the folder to write")
    p.add_argument(
        "--base-url",
        metavar="URL",
        help="where the files will be served (default: [web] base_url, else /), "
        "e.g. https://example.github.io/cafe-notes/",
    )
    p.set_defaults(func=cmd_site_build)


def cmd_web(args: argparse.Namespace) -> int:
    import logging

    from cafebot.bot.app import App
    from cafebot.core.config import DEFAULT_WEB_LISTEN, parse_listen
    from cafebot.web.server import serve

    settings = settings_of(args)
    try:
        host, port = (
            parse_listen(args.listen)
            if args.listen
            else (settings.web.listen or DEFAULT_WEB_LISTEN)
        )
    except ValueError as exc:
        print(f"cafebot web: --listen: {exc} (e.g. --listen 127.0.0.1:8080)", file=sys.stderr)
        return 2
    app = App.create(settings)
    try:
        logging.getLogger("cafebot.web").info("serving the site on http://%s:%d/", host, port)
        return serve(app, host, port)
    except OSError as exc:
        problem = exc.strerror or exc
        print(f"cafebot web: cannot listen on {host}:{port}: {problem}", file=sys.stderr)
        return 1
    finally:
        app.close()


def cmd_site_build(args: argparse.Namespace) -> int:
    from cafebot.bot.app import App
    from cafebot.web.build import BuildError, build_site

    settings = settings_of(args, quiet=True)
    app = App.create(settings)
    try:
        report = build_site(app, Path(args.output), base_url=args.base_url)
    except BuildError as exc:
        print(f"cafebot site build: {exc}", file=sys.stderr)
        return 1
    finally:
        app.close()
    print(f"wrote {report.pages} pages and {report.files} other files to {report.directory}")
    return 0

"""``cafebot site build``: the served pages, written as static files.

Each page is rendered by the same application that ``cafebot web`` serves (through
Flask's test client, without a socket), so the files are the served pages: a page at
``/cafe/2031-05-20/`` is written to ``cafe/2031-05-20/index.html``, which every static
host serves at that address. Search reads a prebuilt index (``search/index.json``) in
the browser. The folder is written afresh: files of an earlier build that no page
needs any more are removed, as long as the folder holds only what a build writes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask

from cafebot.bot.app import App
from cafebot.web.app import create_app
from cafebot.web.index import search_index
from cafebot.web.pages import FRONT_COMING
from cafebot.web.site import EXTENSION, Site

MARKER = ".cafebot-site"  # a folder a build wrote holds this file


class BuildError(Exception):
    """The site cannot be built there; the message says why."""


@dataclass(frozen=True)
class BuildReport:
    directory: Path
    pages: int
    files: int


def site_paths(flask: Flask) -> list[str]:
    """Every address the static site holds, pages first."""
    site = flask.extensions[EXTENSION]
    assert isinstance(site, Site)  # noqa: S101 - create_app put it there
    paths = ["/", "/search/"]
    with site.session() as session:
        for series in site.series:
            key = series.key
            paths += [f"/{key}/", f"/{key}/archive/", f"/{key}/insights/"]
            paths += [f"/{key}/archive/{year}/" for year in site.years(session, series)]
            paths += [f"/{key}/{d.isoformat()}/" for d in site.published_dates(session, series)]
            for coming in site.upcoming(session, series, FRONT_COMING):
                paths.append(f"/{key}/{coming.date.isoformat()}/")
                if coming.status.value in ("upcoming", "cancelled"):
                    paths.append(f"/{key}/{coming.date.isoformat()}.ics")
            paths.append(f"/{key}/calendar.ics")
    return list(dict.fromkeys(paths))


def _file_for(path: str) -> Path:
    relative = path.lstrip("/")
    return (
        Path(relative) / "index.html" if not relative or relative.endswith("/") else Path(relative)
    )


def render_site(app: App, base_url: str | None = None) -> dict[Path, bytes]:
    """Every file of the static site, by its path in the folder."""
    base = base_url or app.settings.web.base_url or "/"
    parts = urlsplit(base if "://" in base else f"http://localhost{base}")
    flask = create_app(app, static=True)
    client = flask.test_client()
    root = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/"
    files: dict[Path, bytes] = {}
    for path in site_paths(flask):
        response = client.get(path, base_url=root)
        if response.status_code != 200:
            raise BuildError(f"the page {path} answered {response.status_code}")
        files[_file_for(path)] = response.get_data()
    static = Path(flask.static_folder or "")
    for item in sorted(static.rglob("*")):
        if item.is_file():
            files[Path("static") / item.relative_to(static)] = item.read_bytes()
    files[Path("search") / "index.json"] = json.dumps(
        search_index(flask), ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")
    files[Path(MARKER)] = b"written by cafebot site build: it replaces this folder\n"
    return files


def build_site(app: App, directory: Path, base_url: str | None = None) -> BuildReport:
    """Write the site into ``directory`` (made if missing; replaced if a build made it)."""
    directory = directory.expanduser()
    if directory.exists() and not directory.is_dir():
        raise BuildError(f"{directory} is a file, not a folder")
    if directory.is_dir() and any(directory.iterdir()) and not (directory / MARKER).exists():
        raise BuildError(
            f"{directory} holds files that no site build wrote; give an empty or new folder"
        )
    files = render_site(app, base_url)
    directory.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for relative, content in files.items():
            target = fresh / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        _open_up(fresh)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            directory.rename(old)
            fresh.rename(directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            fresh.rename(directory)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    pages = sum(1 for p in files if p.suffix == ".html")
    return BuildReport(directory, pages, len(files) - pages)


def _open_up(folder: Path) -> None:
    """Files for sharing: the modes a plain open() and mkdir() give (mkdtemp's is 0700)."""
    mask = os.umask(0o022)
    os.umask(mask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def rebuild_on_publish(app: App) -> None:
    """Publishing (with ``[web] site_dir`` and a ``git_remote``) rebuilds the site too."""
    app.site_builders.append(lambda directory: _rebuild(app, directory))


def _rebuild(app: App, directory: Path) -> None:
    build_site(app, directory)

"""Serving the site with waitress: in the foreground (``cafebot web``) or beside the bot.

With ``[web] base_url`` set, the site's own links (the feed's ``webcal://`` address, the
permalinks in an ``.ics``) use it; without it they follow the request, as a reverse proxy
passes it on (``X-Forwarded-Proto``, ``-Host``, ``-Prefix``, one proxy deep).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from waitress.server import create_server
from werkzeug.middleware.proxy_fix import ProxyFix

from cafebot.bot.app import App
from cafebot.web.app import create_app

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("cafebot.web")

THREADS = 4


class _Fixed:
    """Every request as if it came to ``base_url`` (scheme, host and path prefix)."""

    def __init__(self, app: WSGIApplication, base_url: str) -> None:
        self.app = app
        parts = urlsplit(base_url)
        self.scheme = parts.scheme
        self.host = parts.netloc
        self.prefix = parts.path.rstrip("/")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["wsgi.url_scheme"] = self.scheme
        environ["HTTP_HOST"] = self.host
        if self.prefix:
            path = environ.get("PATH_INFO", "")
            if path.startswith(self.prefix + "/") or path == self.prefix:
                environ["PATH_INFO"] = path[len(self.prefix) :]
            environ["SCRIPT_NAME"] = self.prefix
        return self.app(environ, start_response)


def wsgi_app(app: App, leads: Callable[[], bool] | None = None) -> WSGIApplication:
    flask = create_app(app, leads=leads)
    base_url = app.settings.web.base_url
    if base_url:
        return _Fixed(flask.wsgi_app, base_url)
    wrapped: WSGIApplication = ProxyFix(flask.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)
    return wrapped


def _server(app: App, host: str, port: int, leads: Callable[[], bool] | None) -> Any:
    return create_server(
        wsgi_app(app, leads), host=host, port=port, threads=THREADS, ident="cafebot"
    )


def serve(app: App, host: str, port: int) -> int:
    """Serve until SIGTERM or Ctrl-C; exit status 0."""
    server = _server(app, host, port, None)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    print(f"cafebot web: serving on http://{host}:{server.effective_port}/", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()
    return 0


class Background:
    """The site served on a daemon thread (``cafebot run``); :meth:`stop` ends it."""

    def __init__(
        self, app: App, host: str, port: int, leads: Callable[[], bool] | None = None
    ) -> None:
        self.server = _server(app, host, port, leads)
        self.host = host
        self.port = int(self.server.effective_port)
        self.thread = threading.Thread(target=self._run, name="cafebot-web", daemon=True)
        self.thread.start()
        log.info("serving the site on http://%s:%d/", host, self.port)

    def _run(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # sockets closed under it by stop()
            self.server.run()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the requests in hand, then close every socket; the loop then ends."""
        self.server.task_dispatcher.shutdown(cancel_pending=True, timeout=timeout)
        for channel in list(self.server._map.values()):
            channel.close()
        self.thread.join(timeout=timeout)

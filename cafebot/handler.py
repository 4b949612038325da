"""The zulip_bots handler module, under the name Zulip's runners are given.

``zulip-run-bot cafebot.handler`` and ``zulip-botserver`` (a config section
naming this file) load the handler by this module path, so it is part of
cafebot's public interface. The handler itself lives in :mod:`cafebot.edge.handler`.
"""

from cafebot.edge.handler import CafeHandler, handler_class

__all__ = ["CafeHandler", "handler_class"]

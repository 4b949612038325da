"""A minimal zulip_bots bot, for the burst comparison: what one would write instead.

    zulip-run-bot bench/minimal_bot.py --config-file zuliprc

It acknowledges every command addressed to it, the way zulip_bots' own examples
answer: with a reply (``send_reply``), or, with ``BENCH_BOT_ANSWER=react``, with
a ✅ reaction as cafebot does. It keeps nothing: its answer is its whole effect.
"""

from __future__ import annotations

import os
from typing import Any


class MinimalHandler:
    def usage(self) -> str:
        return "Acknowledges every command it is given (a stand-in for the benchmarks)."

    def handle_message(self, message: dict[str, Any], bot_handler: Any) -> None:
        if os.environ.get("BENCH_BOT_ANSWER") == "react":
            bot_handler.react(message, "check")
        else:
            bot_handler.send_reply(message, f"OK: {message['content'][:40]}")


handler_class = MinimalHandler

"""The edge: Zulip's event loop and catch-up, one-off sends, the outbox and its pacing,
the ``zulip_bots`` handler, and the terminal shell.

The only part that imports ``zulip``: it turns Zulip's payloads into a frozen
``Message`` once and offers the rest a ``Chat``. It calls the dispatcher
(``cafebot.bot``) and may import what lies below; not the command line.
"""

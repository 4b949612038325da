"""The cafe on the web: a read-only site of every series (``cafebot web``, ``cafebot run``).

``app.create_app`` builds the Flask application over a :class:`cafebot.bot.app.App`;
each group of pages is a blueprint (``pages``: the front page, meetings, the archive,
search; ``feeds``: the calendar feeds; ``health``: ``/healthz``), and ``build`` writes
the same pages as static files. ``notes`` turns a meeting's archive Markdown into HTML.

The site shows what the published notes show, and nothing more. It may import the
layers below it (the dispatcher's App, the rules, the notes, storage, ops, core),
never the Zulip edge or the command line.
"""

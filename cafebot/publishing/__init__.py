"""Publishing: post a meeting's notes to Zulip, write the archive file, git commit and push.

Called by the live meeting and the scheduler. It may import the notes, storage and
the core; not the rules, the dispatcher, the edge or the command line. It sends
through the ``cafebot.core.chat.Chat`` protocol, never through ``zulip``.
"""

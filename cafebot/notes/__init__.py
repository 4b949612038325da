"""The notes: the pure renderer, and the archive (reader, records, import and export).

``render(meeting, flavour)`` is a pure function; the archive reads published notes
back into records and stores them, and writes them out again. The notes may import
``cafebot.storage`` and ``cafebot.core``; nothing of the command language, the
rules, publishing, the dispatcher, the edge or the command line.
"""

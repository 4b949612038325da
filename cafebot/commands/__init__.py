"""The command language: the ``@command`` registry, converters, user errors, usage and help.

The feature modules of ``cafebot.cafe`` register their commands here, and the
generated help reads the registry they fill. It imports ``cafebot.core`` only: not
the rules, the notes, publishing, the dispatcher or the edge (it types the
application as ``cafebot.core.services.Services``).
"""

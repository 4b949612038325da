"""Storage: the models, engines and sessions, backups, and the leader lock.

The database is the truth. Storage may import ``cafebot.core`` only; it knows no
feature (not the rules, the notes, the command language, the edge or the command line).
"""

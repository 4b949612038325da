"""Operations: health files and logging.

Used by the command line (``cafebot health``, ``cafebot check``, log set-up). It may
import storage and the core; nothing above them.
"""

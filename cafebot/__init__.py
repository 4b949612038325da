"""cafebot: a Zulip bot that runs a community's recurring meeting."""

__version__ = "0.1.0"

"""cafe."""

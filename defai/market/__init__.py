"""Market data feeds; every read is point-in-time."""

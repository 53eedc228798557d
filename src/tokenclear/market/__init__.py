"""Market data: price histories, calendars."""

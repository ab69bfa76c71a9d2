"""meterstream connector package (filled by its own issue)."""

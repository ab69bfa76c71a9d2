"""meterstream streams package (filled by its own issue)."""

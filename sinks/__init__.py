"""meterstream sinks package (filled by its own issue)."""

"""The dataset tools: validate, stats, inspect, convert, derive_embodiment (one module each)."""

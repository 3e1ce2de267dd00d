"""The aggregated inference network (Allora's mechanism)."""

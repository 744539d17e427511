"""OHLCV bars: reading, validation, the local catalog, aligned panels, splits and causal features."""

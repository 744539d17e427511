"""Probabilistic OHLC forecasters behind one interface (see ``base``)."""

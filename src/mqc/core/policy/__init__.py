"""Policies and the strategy interface that backtests and trading replay."""

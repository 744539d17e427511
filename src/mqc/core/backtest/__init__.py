"""Backtests: replay target weights through the shared market model, with benchmarks and reports.

Light on purpose: import ``mqc.core.backtest.engine`` / ``.report`` for the heavy pieces.
"""

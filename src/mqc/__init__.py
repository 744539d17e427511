"""mqc: a research CLI for quantitative trading."""

__version__ = "0.1.0"

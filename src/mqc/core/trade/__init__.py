"""The trading loop: a crash-safe SQLite ledger, one Broker protocol (paper, Alpaca) and the loop."""

"""The one market model: costs, financing, leverage caps and compounding, shared by every simulator."""

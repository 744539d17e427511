"""Trainers (``dm``: Dirichlet GRU via GRPO/pathwise; ``sharpe``: differentiable Sharpe), their run
directories and checkpoint loaders. Import the API from ``mqc.core.train.api`` (torch is loaded
there, not here, so ``mqc.core.train.config`` stays light)."""

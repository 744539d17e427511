"""Experiment sweeps over any registered trainer: grids or Optuna searches, local or on Ray."""

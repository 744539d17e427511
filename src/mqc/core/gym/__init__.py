"""Gymnasium portfolio environments over the one market model, the forecast feature cube they
observe, behaviour policies and offline datasets (see docs/gym.md)."""

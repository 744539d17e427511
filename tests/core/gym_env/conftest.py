"""Fixtures of the gym tests: a known-answer market and small synthetic panels."""

# (named gym_env, not gym: a test folder called gym on sys.path would shadow the old gym package SB3 probes for)

from __future__ import annotations

import pytest

pytest.importorskip("gymnasium")
pytest.importorskip("stable_baselines3")


@pytest.fixture
def known_panel(make_drift_panel):
    return make_drift_panel()


@pytest.fixture
def small_cube_cfg():
    from mqc.core.gym.config import CubeConfig

    return CubeConfig(forecaster="drift", window=60, num_samples=32, chunk=128)

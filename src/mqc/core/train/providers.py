"""Feature providers that trained policies may name, registered by the layer that builds them.

``mqc.core.policy.inputs`` owns the ``FeatureProvider`` interface and its registry but names no
implementation: the train layer (new runs, ``--resume``, the checkpoint loaders a backtest calls)
rebuilds providers, so it registers the built-in ones here, pointing down at ``forecast``. The
import of the implementation (Kronos: torch and its weights) is deferred until a checkpoint needs it.
"""

from __future__ import annotations

from mqc.core.policy.inputs import FeatureProvider, build_feature_provider, register_lazy_feature_provider

register_lazy_feature_provider("kronos", "mqc.core.forecast.kronos.features:provider_from_settings")

__all__ = ["FeatureProvider", "build_feature_provider"]

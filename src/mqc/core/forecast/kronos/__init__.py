"""Kronos (arXiv 2508.02739, MIT): checkpoint-compatible inference, path sampling and features.

Importing this package is light (no torch, numpy or pandas); the ``kronos`` forecaster is registered
lazily in ``mqc.core.forecast.registry``.
Modules: ``layers``/``model`` (the networks), ``checkpoint`` (load/save the published layout),
``sampler`` (batched Monte-Carlo paths with a KV cache), ``forecaster`` (the ``kronos`` model of
``mqc forecast``), ``features`` (path features for ``mqc train kronos``), ``config`` (settings).
"""

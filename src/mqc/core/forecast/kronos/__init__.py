"""Kronos (arXiv 2508.02739, MIT): checkpoint-compatible inference, path sampling and features.

Importing this package is light (no torch): it only registers the ``kronos`` forecaster lazily.
Modules: ``layers``/``model`` (the networks), ``checkpoint`` (load/save the published layout),
``sampler`` (batched Monte-Carlo paths with a KV cache), ``forecaster`` (the ``kronos`` model of
``mqc forecast``), ``features`` (path features for ``mqc train kronos``), ``config`` (settings).
"""

from mqc.core.forecast import base as _base

_base.register_lazy("kronos", "mqc.core.forecast.kronos.forecaster:create")

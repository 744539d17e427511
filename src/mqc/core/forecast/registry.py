"""Built-in model names -> lazy factories. Imported by ``base`` on first ``create``/``available``.

Every built-in is named here, so importing a model's package (``mqc.core.forecast.kronos.config``
for a profile table, say) never has to import the registry, numpy or pandas.
"""

from __future__ import annotations

from mqc.core.forecast.base import register_lazy

BUILTINS = {
    "naive": "mqc.core.forecast.baselines:Naive",
    "seasonal-naive": "mqc.core.forecast.baselines:SeasonalNaive",
    "drift": "mqc.core.forecast.baselines:Drift",
    "hist-vol": "mqc.core.forecast.baselines:HistVol",
    "ewma-vol": "mqc.core.forecast.baselines:EwmaVol",
    "bootstrap": "mqc.core.forecast.baselines:Bootstrap",
    "garch": "mqc.core.forecast.baselines:Garch",
    "chronos2": "mqc.core.forecast.chronos:ChronosForecaster",
    "chronos-bolt": "mqc.core.forecast.chronos:ChronosForecaster",
    "chronos": "mqc.core.forecast.chronos:ChronosForecaster",
    "kronos": "mqc.core.forecast.kronos.forecaster:create",
    # the candle LM of mqc stage1..4 (core/lm sits above train; named here so any entry point finds it)
    "mqc-lm": "mqc.core.lm.forecaster:create",
}
BASELINES = ("naive", "seasonal-naive", "drift", "hist-vol", "ewma-vol", "bootstrap", "garch")
WEIGHTED = ("chronos2", "chronos-bolt", "chronos")

for _name, _target in BUILTINS.items():
    register_lazy(_name, _target)

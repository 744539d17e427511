"""The shared name -> factory registry (forecasters, checkpoint kinds, feature providers)."""

from __future__ import annotations

from mqc.core.registry import Registry


def test_lazy_entries_import_on_first_lookup_and_builtins_register_themselves():
    reg = Registry("thing", builtins=("mqc.core.registry_missing_module_for_test",))
    reg.register("eager", lambda: 1)
    reg.register_lazy("lazy", "json:dumps")
    assert reg.names() == ["eager", "lazy"]  # a builtin module that does not exist is skipped
    import json

    assert reg.get("lazy") is json.dumps
    assert reg.get("eager")() == 1
    assert reg.get("nope") is None


def test_forecast_and_checkpoint_registries_share_it():
    from mqc.core.forecast import base
    from mqc.core.policy import strategy

    assert "naive" in base.available() and "kronos" in base.available()
    assert {"dm", "sharpe"} <= set(strategy._LOADERS.names())

"""The root ``mqc`` command: global options, command groups and the one error handler.

Kept light on purpose: no torch/pandas/numpy at import time (a test asserts it).
"""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from mqc import __version__
from mqc.commands import _options as o
from mqc.commands import backtest as backtest_cmd
from mqc.commands import data as data_cmd
from mqc.commands import forecast as forecast_cmd
from mqc.commands import profile as profile_cmd
from mqc.commands import quickstart as quickstart_cmd
from mqc.commands import stages as stages_cmd
from mqc.commands import sweep as sweep_cmd
from mqc.commands import trade as trade_cmd
from mqc.commands import train as train_cmd
from mqc.commands._console import State, note, set_state
from mqc.commands._errors import report, report_usage
from mqc.commands._help import tidy
from mqc.core.errors import MqcError


class MqcGroup(TyperGroup):
    """Routes every error through ``report`` so every command (and CliRunner) gets the same exit codes.

    Typer's usage errors (unknown option or command, bad choice) are one ``error:`` line and a pointer
    to ``--help``, exit 2. Anything else is one line, never a traceback: domain errors (MqcError) as
    ``error:``, bugs as ``internal error:`` with a pointer to MQC_DEBUG=1, which prints the traceback.
    """

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        tidy(self)  # the whole tree is built by now: fix how --help shows flags, lists and defaults

    def get_params(self, ctx):  # type: ignore[override]
        params = super().get_params(ctx)
        for param in params:  # (Typer appends --install-completion and --show-completion after __init__)
            if getattr(param, "is_flag", False):
                param.metavar = ""
        return params

    def make_context(self, info_name, args, parent=None, **extra):  # type: ignore[override]
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except TyperException as exc:  # a mistake in the root's own options: `mqc --bogus`
            _usage_exit(exc)

    def invoke(self, ctx):  # type: ignore[override]
        # The words after the root's options, kept for the root callback (click empties them before it
        # runs): `--help` anywhere there means help, which checks no environment.
        ctx.meta[_REST] = [*getattr(ctx, "_protected_args", ()), *ctx.args]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, BrokenPipeError):
            raise  # (a closed pipe, `mqc ... | head`: Typer exits quietly)
        except TyperException as exc:  # Typer's usage errors in any subcommand
            _usage_exit(exc)
        except (MqcError, KeyboardInterrupt) as exc:
            sys.exit(report(exc))
        except Exception as exc:
            sys.exit(report(exc))


_REST = "mqc.rest_args"
_HELP = frozenset({"--help", "-h"})


def _usage_exit(exc: TyperException) -> NoReturn:
    """One line plus a hint instead of Typer's usage box (which is hard-wrapped at 80 columns even in a
    pipe); ``mqc data`` alone (help instead of an error) keeps Typer's handling."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        raise exc
    raise typer.Exit(report_usage(exc)) from exc


app = typer.Typer(
    name="mqc",
    cls=MqcGroup,
    help="Research CLI for quantitative trading: data, forecasts, training, backtests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mqc {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    profile: str = typer.Option(
        None, "--profile", envvar="MQC_PROFILE", help="Profile name (TOML under the user config dir)."
    ),
    json_out: bool = o.JSON(help="Print results as JSON on stdout."),
    quiet: bool = o.QUIET(help="No progress bars or logs; results only."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="More detail on stderr (e.g. what an error was caused by)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    ctx.obj = State(profile=profile, json=json_out, quiet=quiet, verbose=verbose)
    set_state(ctx.obj)
    from mqc.core.config import set_note_sink

    set_note_sink(note)  # deprecation notes of core (an old table or MQC_* name) as one stderr line
    # A misspelt MQC_* variable (MQC_DATA_DIRR) is an error in every command, not only in those that
    # resolve settings. Help and shell completion skip it: the check imports every config table.
    if not ctx.resilient_parsing and not _HELP.intersection(ctx.meta.get(_REST, ())):
        from mqc.core.config import check_env

        check_env()
    # A typo in --profile / MQC_PROFILE must not silently fall back to defaults. `mqc profile ...`
    # commands handle the name themselves (init/set create it, show reports it missing).
    if profile and ctx.invoked_subcommand != "profile":
        from mqc.core.profiles import require_profile

        require_profile(profile)


app.command("quickstart")(quickstart_cmd.quickstart)
app.add_typer(data_cmd.app, name="data")
app.add_typer(profile_cmd.app, name="profile")
app.add_typer(forecast_cmd.app, name="forecast")
app.command("backtest")(backtest_cmd.backtest)
app.add_typer(train_cmd.app, name="train")
app.add_typer(sweep_cmd.app, name="sweep")
app.add_typer(trade_cmd.app, name="trade")
for _stage in ("stage1", "stage2", "stage3", "stage4"):
    app.command(_stage)(getattr(stages_cmd, _stage))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt as exc:  # pragma: no cover - outside click's invoke
        sys.exit(report(exc))


if __name__ == "__main__":  # pragma: no cover
    main()

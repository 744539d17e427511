"""The batched portfolio book every environment steps: N episodes over one market, numpy only.

``EnvData`` holds the arrays of one panel (the feature cube's rows, forward returns, held bars, bar
lengths, overnight flags, fees); ``Book`` holds N episodes' state and steps them all at once through
``mqc.core.market.fills.step`` (the one-bar fill and market equations ``mqc backtest`` uses), so an
env never restates a cost, a cap or a fill rule. ``PortfolioEnv`` (one episode, Gymnasium) and
``BatchedPortfolioEnv`` (N episodes, an SB3 ``VecEnv``) are thin shells around it.

Timing: the decision at bar t (observation: cube row t, the pre-trade book, drawdown and a running
mean of net returns) earns bar t's forward return (close t -> close t+1). In a segment ``[lo, hi)``
decisions run from ``max(lo, first)`` to ``hi - 2``, the bars ``mqc backtest`` scores on that segment.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mqc.core.errors import ConfigError, DataError
from mqc.core.gym.config import EnvConfig
from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import leverage_cap, step
from mqc.core.market.simulator import bar_years, fee_rates, overnight_mask, simple_returns

# Softmax modes read the action as logits in [-LOGIT_BOUND, LOGIT_BOUND] (a softmax can still put
# 99.99% on one of 3 assets). A wide box matters for PPO: its Gaussian starts with std 1, and a box
# as narrow as that std clips most samples, so the deterministic action (the mean) would act unlike
# the sampled ones it was trained on.
LOGIT_BOUND = 5.0
EQUITY_FEATURES = ("drawdown", "recent_return")
RECENT_DECAY = 0.9  # running mean of net returns: recent = d * recent + (1 - d) * net
PENALTIES = ("penalty_turnover", "penalty_drawdown", "penalty_cvar", "penalty_uncertainty", "penalty_shutdown")


@dataclass
class EnvData:
    """One panel's arrays for the env (see module docstring)."""

    features: np.ndarray  # float32 [T, A * F] cube rows (NaN where undefined)
    returns: np.ndarray  # float64 [T, A] simple return close t -> t+1
    hold: np.ndarray  # bool [T, A] forward-filled bars: held, never traded (as the engine does)
    dt: np.ndarray  # float64 [T] bar length in years
    overnight: np.ndarray  # bool [T]
    cvar: np.ndarray  # float64 [T, A] forecast 5% tail (log return)
    fc_std: np.ndarray  # float64 [T, A] forecast std of log return
    fees: np.ndarray  # float64 [A]
    asset_classes: tuple[str, ...]
    market: MarketConfig
    first: int  # first bar with every feature defined
    symbols: tuple[str, ...]
    feature_names: tuple[str, ...]
    row_ok: np.ndarray | None = None  # bool [T]: every feature of the bar is finite (checked once, not per step)
    # float32 [T, obs_size]: the feature rows with room for the book's columns; ``features`` is a view of it,
    # so a step gathers an observation in one copy (``Book.observe``)
    obs_rows: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.row_ok is None:
            self.row_ok = np.isfinite(self.features).all(axis=1)
        if self.obs_rows is None or self.features.base is not self.obs_rows:
            T, F = self.features.shape
            self.obs_rows = np.zeros((T, self.obs_size), dtype=np.float32)
            self.obs_rows[:, :F] = self.features
            self.features = self.obs_rows[:, :F]

    @property
    def n_bars(self) -> int:
        return len(self.returns)

    @property
    def n_assets(self) -> int:
        return self.returns.shape[1]

    @property
    def obs_size(self) -> int:
        return self.features.shape[1] + self.n_assets + len(EQUITY_FEATURES)


def env_data(panel: Any, cube: Any, market: MarketConfig) -> EnvData:
    """The env arrays of ``panel`` with its feature ``cube`` (``cube.check_panel`` first).

    Raises:
        DataError: the cube is of other bars, or never fully defined.
    """
    cube.check_panel(panel)
    T, A, F = cube.values.shape
    if cube.warmup >= T - 2:
        raise DataError(
            f"the feature cube is defined from bar {cube.warmup} of {T}: no bar left to decide on",
            hint="load more history (--start earlier)",
        )
    return EnvData(
        features=np.ascontiguousarray(cube.values.reshape(T, A * F), dtype=np.float32),
        returns=simple_returns(panel.close),
        hold=np.asarray(panel.filled, dtype=bool),
        dt=bar_years(panel.timestamps),
        overnight=overnight_mask(panel.timestamps),
        cvar=np.nan_to_num(cube.values[..., cube.index("fc_cvar5")].astype(np.float64)),
        fc_std=np.nan_to_num(cube.values[..., cube.index("fc_std")].astype(np.float64)),
        fees=fee_rates(panel.asset_classes, market),
        asset_classes=tuple(panel.asset_classes),
        market=market,
        first=cube.warmup,
        symbols=tuple(panel.symbols),
        feature_names=tuple(cube.names),
    )


# ----- actions ----------------------------------------------------------------------------------
def resolve_mode(env: EnvConfig, market: MarketConfig) -> str:
    """The action mode: ``env.action_mode``, else ``long_short`` when shorting is allowed, else ``long``."""
    mode = env.action_mode or ("long_short" if market.allow_short else "long")
    if mode == "long_short" and not market.allow_short:
        raise ConfigError(
            "env.action_mode long_short needs market.allow_short", hint="add --enable-shorting, or use long"
        )
    return mode


def action_size(mode: str, n_assets: int, include_cash: bool) -> int:
    """Length of the action vector of a mode (a cash slot when ``include_cash``)."""
    k = n_assets + int(include_cash)
    if mode == "long":
        return k
    if mode == "leverage":
        return k + 1
    if mode == "long_short":
        return 2 * (n_assets + 1)
    if mode == "position":
        return n_assets
    raise ConfigError(f"unknown action mode {mode!r}; known: long, leverage, long_short, position")


def _softmax(x: np.ndarray) -> np.ndarray:
    """Row softmax of ``[N, k]`` logits (in place on one temporary)."""
    # The row max through a transposed copy: numpy reduces a short last axis slowly, and a max is
    # exact in any order (no NaN gets here; a max of +-0 only changes the sign of x - m at 0).
    z = np.subtract(x, np.maximum.reduce(np.ascontiguousarray(x.T), axis=0)[:, None])
    np.exp(z, out=z)
    z /= np.add.reduce(z, axis=-1, keepdims=True)
    return z


def action_bound(mode: str) -> float:
    """Half-width of the action box: 1 for ``position``, ``LOGIT_BOUND`` for the softmax modes."""
    return 1.0 if mode == "position" else LOGIT_BOUND


def decode(
    action: np.ndarray, mode: str, n_assets: int, include_cash: bool, cap: np.ndarray | None, fast: Any = None
) -> np.ndarray:
    """Target weights ``[N, A]`` from actions ``[N, n_act]`` (clipped to ``action_bound``) and the bars' caps ``[N]``.

    ``long``: softmax of the logits over the assets (and cash). ``leverage``: the same times a gross head
    ``cap * sigmoid``. ``long_short``: ``cap * (longs - shorts)``, each a softmax over the assets
    and a cash slot. ``position``: ``cap * action`` per asset. Shorting rules and the caps
    themselves are applied by the market's fill (``fills.step``), not here (``long`` reads no ``cap``).
    ``fast``: the compiled ``gym.kernels`` (the clip and each softmax in one call), or None (numpy).
    """
    bound = action_bound(mode)
    A = n_assets
    if fast is not None and mode != "position":
        k = action.shape[1]
        if mode == "long":
            return fast.softmax(action, bound, 0, k, A)
        if mode == "leverage":
            head = np.minimum(np.maximum(action[:, -1], -bound, dtype=np.float64), bound)
            return fast.softmax(action, bound, 0, k - 1, A) * (cap / (1.0 + np.exp(-head)))[:, None]
        return (fast.softmax(action, bound, 0, A + 1, A) - fast.softmax(action, bound, A + 1, k, A)) * cap[:, None]
    a = np.maximum(action, -bound, dtype=np.float64)  # np.clip, without its wrapper's overhead
    np.minimum(a, bound, out=a)
    if mode == "position":
        return a * cap[:, None]
    if mode == "long":
        return _softmax(a)[:, :A]
    if mode == "leverage":
        gross = cap / (1.0 + np.exp(-a[:, -1]))
        return _softmax(a[:, :-1])[:, :A] * gross[:, None]
    longs = _softmax(a[:, : A + 1])[:, :A]
    shorts = _softmax(a[:, A + 1 :])[:, :A]
    return (longs - shorts) * cap[:, None]


# ----- the book ---------------------------------------------------------------------------------
class StepResult:
    """A step of N episodes: ``reward``, ``terminated``, ``truncated`` (each ``[N]``) and ``accounting``,
    the per-step figures (each ``[N]``), gathered into a dict only when read (a throughput run never does)."""

    __slots__ = ("reward", "terminated", "truncated", "_parts", "_accounting")

    def __init__(self, reward: np.ndarray, terminated: np.ndarray, truncated: np.ndarray, parts: tuple) -> None:
        self.reward, self.terminated, self.truncated = reward, terminated, truncated
        self._parts = parts
        self._accounting: dict[str, np.ndarray] | None = None

    @property
    def accounting(self) -> dict[str, np.ndarray]:
        if self._accounting is None:
            t, bar, drawdown, equity, pen = self._parts
            self._accounting = {
                "bar": t,
                "net_return": bar.net_returns,
                "turnover": bar.turnover,
                "costs": bar.costs,
                "financing": bar.financing,
                "gross_exposure": bar.gross_leverage,
                "drawdown": drawdown,
                "equity": equity,
                **pen,
            }
        return self._accounting


class Book:
    """N episodes' state over one ``EnvData`` segment ``[lo, hi)``: bar, book, equity, peak.

    A step is a fixed sequence of whole-array numpy calls (no per-episode loop): what depends only on
    the data and the config (the bars' caps, whether the segment holds a forward-filled bar or an
    undefined feature row, which penalties are on) is worked out once here, not per step.
    """

    def __init__(self, data: EnvData, cfg: EnvConfig, n: int, lo: int, hi: int, mode: str | None = None) -> None:
        self.data, self.cfg, self.n = data, cfg, n
        self.mode = mode or resolve_mode(cfg, data.market)
        self.include_cash = data.market.include_cash
        self.n_actions = action_size(self.mode, data.n_assets, self.include_cash)
        self.lo = max(lo, data.first)
        self.hi = hi
        if self.hi - 2 < self.lo:
            raise DataError(
                f"the segment [{lo}, {hi}) holds no decision bar after the features' warm-up (bar {data.first})",
                hint="load more history, or use larger val/test fractions",
            )
        A = data.n_assets
        self.t = np.full(n, self.lo, dtype=np.int64)
        self.start = self.t.copy()
        self.stop = np.full(n, self.hi - 1, dtype=np.int64)  # exclusive last decision + 1
        self.end = np.minimum(self.stop, self.start + cfg.episode_length)  # truncation bar of each episode
        self.book = np.zeros((n, A))
        self.equity = np.ones(n)
        self.peak = np.ones(n)
        self.recent = np.zeros(n)
        self.last_targets = np.zeros((n, A))
        self._zero = np.zeros(n)
        self.never = np.zeros(n, dtype=bool)  # ``terminated`` without a loss limit (read-only, shared)
        self.never.flags.writeable = False
        self._no_penalty = dict.fromkeys(PENALTIES, self._zero)
        # Per bar, once: the decoding's caps (only the modes that read them), whether any bar of the
        # segment is held (else ``fills.step`` gets ``hold=None``), whether every observed row is defined.
        seg = slice(self.lo, min(self.hi, data.n_bars))
        self._caps = None if self.mode == "long" else leverage_cap(data.market, data.overnight)
        m = data.market
        self._overnight = m.max_overnight_leverage != m.max_gross_leverage  # else the caps are one (overnight=None)
        self._holds = bool(data.hold[seg].any())
        self._rows_ok = bool(data.row_ok[seg].all())
        # The env's own arithmetic compiled (``gym.kernels``) where the market step is (``[env] engine``).
        self._fast: Any = None
        if cfg.engine != "numpy":
            from mqc.core.gym import kernels  # numba is slow to import: only for an env that uses it

            if kernels.HAVE_NUMBA:
                self._fast = kernels
            elif cfg.engine == "numba":
                raise ConfigError("env.engine 'numba' needs numba", hint="pip install 'mqc[fast]'")
        self._penalties = any(
            (cfg.turnover_penalty, cfg.drawdown_penalty, cfg.cvar_penalty, cfg.uncertainty_penalty)
        ) or bool(cfg.loss_limit or cfg.shutdown_penalty)

    @property
    def steps(self) -> np.ndarray:
        """Decisions made in each episode so far."""
        return self.t - self.start

    @property
    def last_start(self) -> int:
        """The latest start that still leaves a full episode (or the first decision bar)."""
        return max(self.lo, self.hi - 1 - self.cfg.episode_length)

    def reset(self, idx: np.ndarray, starts: np.ndarray) -> None:
        """Start episodes ``idx`` at decision bars ``starts`` from cash."""
        starts = np.asarray(starts, dtype=np.int64)
        if ((starts < self.lo) | (starts > self.hi - 2)).any():
            raise ConfigError(
                f"start_index must be a decision bar in [{self.lo}, {self.hi - 2}], got {starts.tolist()}",
                hint="pick a start inside the env's segment after the features' warm-up",
            )
        self.t[idx] = starts
        self.start[idx] = starts
        self.end[idx] = np.minimum(self.stop[idx], starts + self.cfg.episode_length)
        self.book[idx] = 0.0
        self.equity[idx] = 1.0
        self.peak[idx] = 1.0
        self.recent[idx] = 0.0

    def observe(self) -> np.ndarray:
        """``[N, obs_size]`` float32 observations at the current bars.

        Raises:
            DataError: NaN/inf in an observation (a feature undefined at a decision bar).
        """
        d, t = self.data, self.t
        F = d.features.shape[1]
        A = d.n_assets
        if self._fast is not None:
            obs, finite = self._fast.observe(d.obs_rows, t, self.book, self.equity, self.peak, self.recent)
        else:
            obs = d.obs_rows.take(t, axis=0)  # the feature row, one copy
            obs[:, F : F + A] = self.book
            obs[:, F + A] = self.equity / self.peak - 1.0
            obs[:, F + A + 1] = self.recent
            # The book's columns: one sum is finite iff all are (float32, each |x| far below 1e38 / 32).
            finite = math.isfinite(np.add.reduce(obs[:, F:], axis=None))
        if not (self._rows_ok and finite):
            ok = d.row_ok[t] & np.isfinite(obs[:, F:]).all(axis=1)
            if not ok.all():
                raise DataError(
                    f"NaN/inf in the observation at bar {int(t[~ok][0])}: a feature is undefined there",
                    hint="check the bars around it (mqc data verify) and rebuild the features (mqc data features)",
                )
        return obs

    def step(self, action: np.ndarray) -> StepResult:
        """Decide at the current bars, earn their forward returns, advance one bar.

        Raises:
            ConfigError: an action of the wrong shape, or with NaN/inf.
        """
        action = np.asarray(action)
        if action.shape != (self.n, self.n_actions):
            raise ConfigError(
                f"action of shape {action.shape}, the env expects {(self.n, self.n_actions)} ({self.mode} mode)"
            )
        if not np.isfinite(action).all():
            raise ConfigError("NaN/inf in the action")
        d, t = self.data, self.t
        overnight = d.overnight[t] if self._overnight else None
        cap = None if self._caps is None else self._caps[t]
        targets = decode(action, self.mode, d.n_assets, self.include_cash, cap, self._fast)
        hold = d.hold[t] if self._holds else None
        fill = step(
            self.book, targets, hold, d.returns[t], d.fees, d.dt[t], overnight, d.asset_classes, d.market,
            engine=self.cfg.engine,
        )  # fmt: skip
        bar = fill.bar
        net = bar.net_returns
        if self._fast is not None:
            equity, self.peak, self.recent, drawdown, reward = self._fast.advance(
                self.equity, self.peak, self.recent, net, RECENT_DECAY
            )  # the rows of one new array
            self.equity = equity
            np.log1p(reward, out=reward)
        else:
            self.equity = equity = self.equity * (1.0 + net)
            self.peak = np.maximum(self.peak, equity)
            drawdown = 1.0 - equity / self.peak
            self.recent = RECENT_DECAY * self.recent + (1.0 - RECENT_DECAY) * net
            reward = np.log1p(np.maximum(net, -1.0 + 1e-12))
        terminated, pen = None, None
        if self._penalties:
            pen = dict.fromkeys(PENALTIES, self._zero)
            terminated, reward = self._penalise(pen, reward, bar, drawdown, fill.weights, t)
        self.book = fill.book
        self.last_targets = targets
        self.last_weights = fill.weights
        self.t = t + 1
        truncated = self.t >= self.end
        if terminated is None:
            terminated = self.never
        else:
            truncated &= ~terminated
        return StepResult(reward, terminated, truncated, (t, bar, drawdown, equity, pen or self._no_penalty))

    def _penalise(
        self, pen: dict, reward: np.ndarray, bar: Any, drawdown: np.ndarray, weights: np.ndarray, t: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Fill ``pen`` with the step's penalties; returns (terminated or None without a loss limit,
        reward minus the penalties)."""
        cfg, d = self.cfg, self.data
        exposure = np.abs(weights) if cfg.cvar_penalty or cfg.uncertainty_penalty else None
        if cfg.turnover_penalty:
            pen["penalty_turnover"] = cfg.turnover_penalty * bar.turnover
        if cfg.drawdown_penalty:
            pen["penalty_drawdown"] = cfg.drawdown_penalty * drawdown
        if cfg.cvar_penalty:
            pen["penalty_cvar"] = cfg.cvar_penalty * (exposure * np.maximum(-d.cvar[t], 0.0)).sum(-1)
        if cfg.uncertainty_penalty:
            pen["penalty_uncertainty"] = cfg.uncertainty_penalty * (exposure * d.fc_std[t]).sum(-1)
        terminated = (drawdown >= cfg.loss_limit) if cfg.loss_limit > 0 else None
        if cfg.shutdown_penalty:
            stop = terminated if terminated is not None else np.zeros(self.n, dtype=bool)
            pen["penalty_shutdown"] = np.where(stop, cfg.shutdown_penalty, 0.0)
        for value in pen.values():
            if value is not self._zero:
                reward = reward - value
        return terminated, reward


def unbounded(cfg: EnvConfig) -> EnvConfig:
    """``cfg`` with episodes that run to the segment's end (replays, evaluation)."""
    return dataclasses.replace(cfg, episode_length=10_000_000, loss_limit=0.0)

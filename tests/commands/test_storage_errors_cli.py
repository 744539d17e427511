"""File-system failures the user can fix (full disk, quota, permission, read-only, too many open files,
an unusable MQC_DATA_DIR) are one clear line naming the directory and the fix, exit 1, never an
"internal error ... report it", wherever mqc writes: catalog, run directories, reports, forecast files."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mqc.cli import app

runner = CliRunner()
HEADER = "timestamp,open,high,low,close,volume\n"
USER_ERRNOS = ("ENOSPC", "EDQUOT", "EACCES", "EPERM", "EROFS", "EMFILE", "ENFILE")
TINY = [
    "--lookback",
    "16",
    "--horizon",
    "8",
    "--batch-windows",
    "4",
    "--hidden-size",
    "8",
    "--steps",
    "4",
    "--eval-interval",
    "2",
]


def refuse(code: int):
    """A stand-in for a write that the OS refuses with ``code`` (no file name, as ``write(2)`` gives)."""

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return fail


def csv_file(path: Path, n: int = 40) -> Path:
    import datetime as dt

    t0 = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    rows = [HEADER] + [
        f"{t0 + dt.timedelta(hours=k):%Y-%m-%dT%H:%M:%SZ},{100 + k},{102 + k},{98 + k},{101 + k},{10 + k}\n"
        for k in range(n)
    ]
    path.write_text("".join(rows))
    return path


def catalog_files() -> dict[str, str]:
    root = Path(os.environ["MQC_DATA_DIR"]) / "catalog"
    return (
        {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock"
        }
        if root.exists()
        else {}
    )


def assert_user_error(res, *names: str) -> list[str]:
    """Exit 1, an ``error:`` line naming each of ``names`` and a hint line; no bug report request."""
    assert res.exit_code == 1, res.output
    assert "internal error" not in res.output and "report it" not in res.output and "Traceback" not in res.output, (
        res.output
    )
    lines = [line for line in res.stderr.splitlines() if line.startswith(("error:", "hint:"))]
    assert len(lines) == 2 and lines[0].startswith("error:") and lines[1].startswith("hint:"), res.stderr
    joined = "".join(res.stderr.split())
    for name in names:
        assert "".join(name.split()) in joined, (name, res.stderr)
    return lines


@pytest.mark.parametrize("name", USER_ERRNOS)
def test_data_import_refused_by_the_file_system_is_a_user_error(tmp_path, monkeypatch, name):
    src = csv_file(tmp_path / "AAA.csv")
    assert runner.invoke(app, ["data", "import", str(src), "-s", "OLD"]).exit_code == 0
    before = catalog_files()
    import pyarrow.parquet as pq

    monkeypatch.setattr(pq, "write_table", refuse(getattr(errno, name)))
    res = runner.invoke(app, ["data", "import", str(src)])
    catalog = Path(os.environ["MQC_DATA_DIR"]) / "catalog"
    error, hint = assert_user_error(res, str(catalog))
    assert os.strerror(getattr(errno, name)).lower().split()[0] in error.lower() or name in (
        "EMFILE",
        "ENFILE",
        "EPERM",
    )
    if name in ("ENOSPC", "EDQUOT", "EACCES", "EROFS"):
        assert "MQC_DATA_DIR" in hint  # which setting moves the catalog elsewhere
    if name in ("EMFILE", "ENFILE"):
        assert "open-file limit" in hint
    assert catalog_files() == before  # nothing stored lost or corrupted


def test_train_run_directory_on_a_full_disk(synth, tmp_path, monkeypatch):
    """torch.save hides ENOSPC ("RuntimeError: ... unexpected pos"): on a full file system it is still
    reported as the full disk it is."""
    root = tmp_path / "bars"
    root.mkdir()
    for sym, df in synth(n_assets=3, n_bars=320, seed=4).items():
        df.to_csv(root / f"{sym}.csv", index=False)
    import torch

    def torch_save_on_a_full_disk(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")

    class NoSpace:
        f_bavail, f_frsize = 0, 4096

    monkeypatch.setattr(torch, "save", torch_save_on_a_full_disk)
    monkeypatch.setattr(os, "statvfs", lambda path: NoSpace())
    runs = tmp_path / "runs"
    res = runner.invoke(app, ["train", "dm", "--data-root", str(root), "--save-dir", str(runs), *TINY])
    error, hint = assert_user_error(res, str(runs))
    assert "no space left on device" in error and "free space" in hint


def test_a_failed_write_with_free_space_is_still_a_bug(tmp_path, monkeypatch):
    """Only an (almost) full file system turns a writer's own error into "no space left"."""
    from mqc.core import atomic

    with pytest.raises(RuntimeError, match="unexpected pos"), atomic.atomic_path(tmp_path / "x.pt"):
        raise RuntimeError("unexpected pos 576 vs 534")


def test_train_run_directory_permission_denied(synth, tmp_path, monkeypatch):
    root = tmp_path / "bars"
    root.mkdir()
    for sym, df in synth(n_assets=3, n_bars=320, seed=4).items():
        df.to_csv(root / f"{sym}.csv", index=False)
    runs = Path(os.environ["MQC_RUNS_DIR"])
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.is_relative_to(runs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    res = runner.invoke(app, ["train", "dm", "--data-root", str(root), *TINY])
    error, hint = assert_user_error(res, str(runs), "permission denied")
    assert "MQC_RUNS_DIR" in error + hint


@pytest.fixture
def weights_bars(synth, tmp_path) -> tuple[Path, Path]:
    frames = synth(n_assets=2, n_bars=300, seed=6)
    root = tmp_path / "bars"
    root.mkdir()
    for sym, df in frames.items():
        df.to_csv(root / f"{sym}.csv", index=False)
    ts = frames["SYN0"]["timestamp"]
    weights = tmp_path / "w.csv"
    weights.write_text("timestamp,SYN0,SYN1\n" + "".join(f"{ts[i]:%Y-%m-%d},0.3,0.4\n" for i in range(20, 300, 20)))
    return root, weights


@pytest.mark.parametrize("name", ["EROFS", "EACCES"])
def test_backtest_report_on_a_read_only_or_forbidden_directory(weights_bars, tmp_path, monkeypatch, name):
    root, weights = weights_bars
    monkeypatch.setattr(Path, "write_bytes", refuse(getattr(errno, name)))
    out = tmp_path / "report"
    res = runner.invoke(
        app,
        [
            "backtest",
            "-w",
            str(weights),
            "--data-root",
            str(root),
            "--window-length",
            "64",
            "--out",
            str(out),
            "--no-plots",
        ],
    )
    error, hint = assert_user_error(res, str(out))
    assert ("read-only" in error) if name == "EROFS" else ("permission denied" in error)


def test_backtest_plots_with_too_many_open_files(weights_bars, tmp_path, monkeypatch):
    root, weights = weights_bars
    import matplotlib.figure

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", refuse(errno.EMFILE))
    out = tmp_path / "report"
    res = runner.invoke(
        app, ["backtest", "-w", str(weights), "--data-root", str(root), "--window-length", "64", "--out", str(out)]
    )
    error, hint = assert_user_error(res, str(out), "too many open files")
    assert "ulimit -n" in hint


@pytest.fixture
def catalog(synth):
    from mqc.core.data.catalog import Catalog

    cat = Catalog()
    for s, df in synth(n_assets=2, n_bars=300, seed=0, weekdays_only=True).items():
        cat.write(s, df, source="synth", timeframe="1d", asset_class="equity")
    return cat


def test_forecast_eval_results_over_quota(catalog, tmp_path, monkeypatch):
    monkeypatch.setattr(Path, "write_bytes", refuse(errno.EDQUOT))
    path = tmp_path / "results" / "eval.json"
    res = runner.invoke(
        app, ["forecast", "eval", "SYN0", "--models", "naive", "--origins", "10", "--horizon", "1", "--out", str(path)]
    )
    assert_user_error(res, str(path.parent), "disk quota exceeded")


def test_forecast_table_file_on_a_full_disk(catalog, tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.setattr(pd.DataFrame, "to_parquet", refuse(errno.ENOSPC))
    path = tmp_path / "fc" / "f.parquet"
    res = runner.invoke(app, ["forecast", "SYN0", "--model", "naive", "--out", str(path)])
    assert_user_error(res, str(path.parent), "no space left on device")
    assert not list(path.parent.glob("*"))  # no temp file left behind


@pytest.mark.parametrize("command", [["data", "import", "AAA.csv"], ["data", "list"], ["backtest", "-c", "latest"]])
@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda tmp: tmp / "file.txt" / "mqc", "the path passes through the file"),  # under a regular file
        (lambda tmp: tmp / "file.txt", "the path is a file, not a directory"),  # a regular file itself
    ],
)
def test_unusable_data_dir_names_the_variable_and_the_fix(tmp_path, monkeypatch, make, what, command):
    (tmp_path / "file.txt").write_text("x")
    csv_file(tmp_path / "AAA.csv")
    data_dir = make(tmp_path)
    monkeypatch.setenv("MQC_DATA_DIR", str(data_dir))
    monkeypatch.delenv("MQC_RUNS_DIR")
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, command)
    error, hint = assert_user_error(res, f"MQC_DATA_DIR={data_dir}", what)
    assert hint == "hint: set MQC_DATA_DIR to a directory (it is created when missing), or unset it"


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux sysfs")
def test_data_dir_under_sys_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MQC_DATA_DIR", "/sys/mqc-test-data")
    monkeypatch.delenv("MQC_RUNS_DIR")
    res = runner.invoke(app, ["data", "import", str(csv_file(tmp_path / "AAA.csv"))])
    error, hint = assert_user_error(res, "/sys/mqc-test-data", "MQC_DATA_DIR")
    assert "set MQC_DATA_DIR to a directory" in hint


@pytest.fixture
def tiny_fs(tmp_path):
    """A 300 KB tmpfs (needs mount rights; skipped without them)."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("mount not permitted here")
    try:
        yield mnt
    finally:
        import gc

        gc.collect()  # a writer kept alive by a traceback can hold a deleted temp file open
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_real_full_disk(tmp_path, tiny_fs):
    """Imports into a catalog on a 300 KB file system until it is full: one clear line, catalog intact."""
    import mqc

    src_dir = str(Path(mqc.__file__).resolve().parents[1])
    env = {**os.environ, "MQC_DATA_DIR": str(tiny_fs / "d"), "MQC_RUNS_DIR": str(tiny_fs / "r"), "PYTHONPATH": src_dir}
    src = tmp_path / "src"
    src.mkdir()
    last = None
    for k in range(12):  # ~150 KB of Parquet each: the disk fills within two or three imports
        path = csv_file(src / f"S{k}.csv", n=10000)
        last = subprocess.run(
            [sys.executable, "-m", "mqc", "-q", "data", "import", str(path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        if last.returncode != 0:
            break
    assert last is not None and last.returncode == 1 and k >= 1, (k, last.stdout, last.stderr)
    lines = last.stderr.strip().splitlines()
    assert lines[0].startswith(f"error: {tiny_fs / 'd' / 'catalog'}") and "no space left on device" in lines[0], (
        last.stderr
    )
    assert lines[-1].startswith("hint: free space") and "report it" not in last.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "mqc", "--json", "data", "list"], capture_output=True, text=True, env=env, timeout=60
    )
    assert listing.returncode == 0 and f'"S{k - 1}"' in listing.stdout  # the catalog before the failure is intact


def test_a_real_full_disk_under_torch_save(tiny_fs):
    import torch

    from mqc.core.errors import StorageError
    from mqc.core.runs import make_checkpoint, save_checkpoint

    with pytest.raises(StorageError, match="no space left on device") as err:
        save_checkpoint(tiny_fs / "latest.pt", make_checkpoint("dm", "0", w=torch.zeros(200_000)))
    assert str(tiny_fs) in str(err.value) and isinstance(err.value.__cause__, RuntimeError)
    assert not list(tiny_fs.iterdir())  # the torn temp file is gone


@pytest.mark.parametrize("name", ["EROFS", "ENOSPC", "EACCES"])
def test_errors_name_the_target_file_not_the_temp_file(tmp_path, monkeypatch, name):
    # The issue: "error: .../.XOM.1d.json.obr585m7.tmp: read-only file system" named a file the user
    # never heard of. Creating the temp file, or renaming it, is refused by the OS with its name.
    from mqc.commands._errors import report
    from mqc.core import atomic
    from mqc.core.errors import StorageError, storage_error

    code = getattr(errno, name)
    target = tmp_path / "XOM.1d.json"
    real_open = os.open

    def refuse_temp(path, *args, **kwargs):
        if str(path).endswith(".tmp"):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(atomic.os, "open", refuse_temp)
    with pytest.raises(StorageError) as err:
        atomic.write_json(target, {"a": 1})
    assert str(err.value).startswith(f"{target}: ") and ".tmp" not in str(err.value)
    monkeypatch.setattr(atomic.os, "open", real_open)

    def refuse_rename(src, dst):
        raise OSError(code, os.strerror(code), str(src), None, str(dst))

    monkeypatch.setattr(atomic.os, "replace", refuse_rename)
    with pytest.raises(StorageError) as err:
        atomic.write_text(target, "x")
    assert str(err.value).startswith(f"{target}: ") and ".tmp" not in str(err.value)
    assert not list(tmp_path.glob(".*.tmp"))  # and the temp file is gone
    # A raw OSError on a temp file reaching the one error handler names the target too.
    raw = OSError(code, os.strerror(code), str(tmp_path / ".XOM.1d.json.obr585m7.tmp"))
    assert str(storage_error(raw)).startswith(f"{target}: ")
    assert report(raw) == 1


def test_backtest_report_on_a_full_disk_is_all_or_nothing(weights_bars, tmp_path, monkeypatch):
    # The issue: `backtest --out DIR` on a full disk left DIR holding only windows.json.
    root, weights = weights_bars
    out = tmp_path / "report"
    args = ["backtest", "-w", str(weights), "--data-root", str(root), "--window-length", "64", "--out", str(out)]
    real = Path.write_bytes

    def full_after_windows(self, data):
        if self.name.startswith(".equity.csv."):  # windows.json is written, equity.csv meets a full disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_after_windows)
    error, _ = assert_user_error(runner.invoke(app, [*args, "--no-plots"]), str(out), "no space left")
    assert ".tmp" not in error
    assert not out.exists() and not list(tmp_path.glob(".report.*"))  # no partial folder, no temp folder
    # Over a previous report: its files stay exactly as they were, the user's own file too.
    monkeypatch.setattr(Path, "write_bytes", real)
    assert runner.invoke(app, args).exit_code == 0
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"report.json", "windows.json", "equity.csv", "equity.png", "weights.png", "trades.jsonl"} <= set(before)
    monkeypatch.setattr(Path, "write_bytes", full_after_windows)
    assert_user_error(runner.invoke(app, [*args, "--no-plots", "--start", "2015-03-02"]), str(out))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(".report.*"))
    # And a successful rewrite replaces the report, drops the stale plots, keeps notes.txt.
    monkeypatch.setattr(Path, "write_bytes", real)
    assert runner.invoke(app, [*args, "--no-plots"]).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "equity.csv",
        "notes.txt",
        "report.json",
        "trades.jsonl",
        "windows.json",
    ]

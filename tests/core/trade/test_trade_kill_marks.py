"""The kill switches' peak and day start, read incrementally from the ledger's marks, equal the
whole-history formula (and a year of bars does not read every mark again at every bar)."""

from __future__ import annotations

import numpy as np

from mqc.core.trade.ledger import Ledger


def _whole(ledger: Ledger, day: str) -> tuple[float, float] | None:
    marks = [(e["bar"], e["data"]["equity"]) for e in ledger.events("mark")]
    if not marks:
        return None
    earlier = [v for b, v in marks if b[:10] < day]
    return max(v for _, v in marks), earlier[-1] if earlier else marks[0][1]


def test_marks_summary_equals_the_whole_history_bar_after_bar(tmp_path):
    ledger = Ledger.open(tmp_path / "l.db", durable=False)
    rng = np.random.default_rng(0)
    assert ledger.marks_summary("2020-01-01") is None
    days = ["2020-01-01", "2020-01-02", "2020-01-02", "2020-01-01", "2020-01-03", "2020-01-03", "2020-01-05"]
    for k, day in enumerate(days):  # a day out of order too: "last" is in ledger order
        bar = f"{day}T{k:02d}:00:00Z"
        ledger.record("mark", bar=bar, dedup=f"mark:{bar}", data={"equity": float(rng.uniform(90, 110))})
        ledger.record("equity", bar=bar, data={"pre": 1.0})  # other events in between
        for probe in ("2020-01-01", "2020-01-02", "2020-01-04", day):
            assert ledger.marks_summary(probe) == _whole(ledger, probe)


def test_marks_summary_reads_only_the_new_marks(tmp_path):
    ledger = Ledger.open(tmp_path / "l.db", durable=False)
    for k in range(5):
        ledger.record("mark", bar=f"2020-01-0{k + 1}T00:00:00Z", data={"equity": 100.0 + k})
    ledger.marks_summary("2020-01-09")
    rows: list[str] = []
    ledger.conn.set_trace_callback(rows.append)
    ledger.record("mark", bar="2020-01-09T00:00:00Z", data={"equity": 50.0})
    assert ledger.marks_summary("2020-01-09") == (104.0, 104.0)
    reads = [r for r in rows if "kind='mark'" in r]
    assert len(reads) == 1 and "seq > 5" in reads[0]

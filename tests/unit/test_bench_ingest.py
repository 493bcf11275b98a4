"""The ingest benchmark's report logic: ratios against the floor and the goal."""

from __future__ import annotations

from bench import ingest


def test_ratios_and_goal() -> None:
    summary = ingest.report(
        {
            "sqlite": {"floor_rps": 10000.0, "collector_rps": 6000.0, "load": None},
            "postgresql": {"floor_rps": 10000.0, "collector_rps": 4000.0, "load": None},
            "broken": {"floor_rps": 0.0, "collector_rps": 10.0, "load": None},
        }
    )
    backends = summary["backends"]
    assert (backends["sqlite"]["ratio"], backends["sqlite"]["meets_goal"]) == (0.6, True)
    assert (backends["postgresql"]["ratio"], backends["postgresql"]["meets_goal"]) == (0.4, False)
    assert (backends["broken"]["ratio"], backends["broken"]["meets_goal"]) == (None, None)
    assert summary["goal_ratio"] == 0.5


def test_table_names_missed_goals_and_load() -> None:
    load = {
        "shippers": 50,
        "seconds": 20,
        "records_per_s": 1000.0,
        "cpu_percent": 40.0,
        "rss_mb": 90,
        "peak_rss_mb": 95,
    }
    text = ingest.table(ingest.report({"postgresql": {"floor_rps": 10000.0, "collector_rps": 4000.0, "load": load}}))
    assert "MISSED" in text and "50 shippers x 20 s" in text and "CPU 40%" in text


def test_table_prints_lost_and_duplicated_and_flags_them() -> None:
    clean = {"sent": 100, "stored": 100, "acknowledged": 100, "lost": 0, "duplicated": 0}
    bad = {"sent": 100, "stored": 99, "acknowledged": 100, "lost": 2, "duplicated": 1}
    load = {"shippers": 2, "seconds": 1, "records_per_s": 1.0, "cpu_percent": 1.0, "rss_mb": 1, "peak_rss_mb": 1}
    text = ingest.table(
        ingest.report(
            {
                "sqlite": {"floor_rps": 10.0, "collector_rps": 6.0, "records_tally": clean, "load": None},
                "postgresql": {
                    "floor_rps": 10.0,
                    "collector_rps": 6.0,
                    "records_tally": clean,
                    "load": {**load, "records": bad, "failures": ["h1: refused"]},
                },
            }
        )
    )
    assert text.count("lost 0, duplicated 0") == 2 and text.count("NOT exactly once") == 1
    assert "shippers phase: sent 100, stored 99, acknowledged 100, lost 2, duplicated 1" in text
    assert "shipper failed: h1: refused" in text

"""collector.json's incident engine and dead-man settings: defaults, and a bad value refused in one line that
never shows the URL (it may hold a token); Apprise URLs always get bounded connect/read timeouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.collector import config
from orchestrator.errors import ConfigError
from orchestrator.incidents.notify import bounded
from orchestrator.settings import Settings


def loaded(tmp_path: Path, **values: object) -> config.CollectorSettings:
    settings = Settings(home=tmp_path / "home", inventories=tmp_path / "inv", db_url=None)
    config.init(settings, listen="127.0.0.1:8443", url=None, sans=())
    conf = settings.home / "collector" / config.CONFIG_FILE
    conf.write_text(json.dumps({**json.loads(conf.read_text()), **values}))
    return config.load(settings)


def test_defaults_run_the_engine_every_5_s_and_no_heartbeat(tmp_path: Path) -> None:
    got = loaded(tmp_path)
    assert (got.incidents_tick_seconds, got.deadman_url, got.deadman_interval_seconds) == (5.0, None, 60.0)
    got = loaded(
        tmp_path / "b", incidents_tick_seconds=0, deadman_url="https://hc.example/p/SECRET", deadman_interval_seconds=30
    )
    assert (got.incidents_tick_seconds, got.deadman_url, got.deadman_interval_seconds) == (
        0.0,
        "https://hc.example/p/SECRET",
        30.0,
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"incidents_tick_seconds": -1}, "incidents_tick_seconds must be a number of seconds"),
        ({"deadman_interval_seconds": 0}, "deadman_interval_seconds must be a number of seconds"),
        ({"deadman_interval_seconds": True}, "deadman_interval_seconds must be a number of seconds"),
        ({"deadman_url": "not a url SECRET"}, "deadman_url must be a URL"),
    ],
)
def test_bad_values_are_refused_without_showing_the_url(
    tmp_path: Path, values: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        loaded(tmp_path, **values)
    assert "SECRET" not in str(err.value)


def test_apprise_urls_get_connect_and_read_timeouts_unless_they_set_them() -> None:
    assert bounded("json://127.0.0.1:9/x") == "json://127.0.0.1:9/x?cto=5&rto=5"
    assert bounded("pover://u@t?priority=high", 2.5) == "pover://u@t?priority=high&cto=2.5&rto=2.5"
    assert bounded("json://h/x?cto=1&rto=9") == "json://h/x?cto=1&rto=9"

from __future__ import annotations

import copy
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from sentry_agent.config import ConfigError, RuleOverride, load_config, parse_config

MINIMAL: dict[str, Any] = {
    "client": "acme",
    "tier": "essentials",
    "host": "game-01",
    "sources": [{"name": "game", "path": "/var/log/sentry-game/login.log"}],
}


DELETE = object()


def with_changes(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(MINIMAL)
    for key, value in changes.items():
        if value is DELETE:
            del data[key]
        else:
            data[key] = value
    return data


def test_minimal_config_gets_documented_defaults() -> None:
    cfg = parse_config(MINIMAL)
    assert (cfg.client, cfg.tier, cfg.host) == ("acme", "essentials", "game-01")
    assert (cfg.listen_address, cfg.listen_port) == ("127.0.0.1", 9110)
    assert cfg.rules_file is None
    assert dict(cfg.rule_overrides) == {}
    assert (cfg.nft_table_family, cfg.nft_table, cfg.nft_set_v4, cfg.nft_set_v6) == (
        "inet",
        "sentry",
        "banned_v4",
        "banned_v6",
    )
    assert cfg.ban_command_enabled is True
    assert cfg.spool_dir == Path("/var/spool/sentry-agent")
    assert cfg.spool_max_bytes == 10 * 1024 * 1024
    assert cfg.heartbeat_interval_seconds == 30
    assert cfg.state_dir == Path("/var/lib/sentry-agent")
    assert [str(n) for n in cfg.never_ban] == ["127.0.0.0/8", "::1/128"]
    assert cfg.sources[0].name == "game"
    assert cfg.sources[0].path == Path("/var/log/sentry-game/login.log")


def test_full_config() -> None:
    cfg = parse_config(
        with_changes(
            listen_address="::1",
            listen_port=9200,
            never_ban=["192.0.2.0/24", "2001:db8::/32", "127.0.0.0/8"],
            rule_overrides={"game-bruteforce": {"threshold": 3, "window_seconds": 30, "ban_seconds": 300}},
            rules_file="/opt/rules.json",
            ban_command_enabled=False,
            heartbeat_interval_seconds=15,
            spool_max_bytes=1 << 20,
        )
    )
    assert cfg.listen_address == "::1"
    # Loopback is always protected and not duplicated when listed explicitly.
    assert [str(n) for n in cfg.never_ban] == ["127.0.0.0/8", "::1/128", "192.0.2.0/24", "2001:db8::/32"]
    assert cfg.rule_overrides["game-bruteforce"] == RuleOverride(3, 30, 300)
    assert cfg.rules_file == Path("/opt/rules.json")
    assert cfg.heartbeat_interval_seconds == 15
    assert ipaddress.ip_address("192.0.2.55") in cfg.never_ban[2]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"client": DELETE}, "client: required key is missing"),
        ({"host": ""}, "host: must be a non-empty string"),
        ({"tier": 3}, "tier: must be a non-empty string, got int 3"),
        ({"listen_address": "0.0.0.0"}, "listen_address: must be a loopback address"),
        ({"listen_address": "10.1.2.3"}, "listen_address: must be a loopback address"),
        ({"listen_address": "::"}, "listen_address: must be a loopback address"),
        ({"listen_address": "localhost"}, "listen_address: must be an IP address literal"),
        ({"listen_port": 70000}, "listen_port: must be between 0 and 65535, got 70000"),
        ({"listen_port": "9110"}, "listen_port: must be an integer, got str '9110'"),
        ({"listen_port": True}, "listen_port: must be an integer, got bool True"),
        ({"sources": DELETE}, "sources: required key is missing"),
        ({"sources": "game"}, "sources: must be a list"),
        ({"sources": [{"name": "game"}]}, "sources[0].path: required key is missing"),
        ({"sources": [{"name": "game", "path": "login.log"}]}, "sources[0].path: must be an absolute path"),
        ({"sources": [{"name": "a b", "path": "/x"}]}, "sources[0].name: must match"),
        ({"sources": [{"name": "g", "path": "/x", "tail": 1}]}, "sources[0].tail: unknown key"),
        (
            {"sources": [{"name": "g", "path": "/x"}, {"name": "g", "path": "/y"}]},
            "sources[1].name: duplicate source name 'g'",
        ),
        (
            {"sources": [{"name": "g", "path": "/x"}, {"name": "h", "path": "/x"}]},
            "sources[1].path: /x is already source 'g'",
        ),
        ({"never_ban": "10.0.0.0/8"}, "never_ban: must be a list of CIDRs"),
        ({"never_ban": ["10.0.0.1/8"]}, "never_ban[0]: invalid CIDR '10.0.0.1/8'"),
        ({"never_ban": ["10.0.0.0/8", "mgmt"]}, "never_ban[1]: invalid CIDR 'mgmt'"),
        ({"nft_table": "sentry; flush ruleset"}, "nft_table: must be an nftables identifier"),
        ({"nft_set_v4": "-x"}, "nft_set_v4: must be an nftables identifier"),
        ({"nft_table_family": "arp"}, "nft_table_family: must be one of inet, ip, ip6"),
        ({"ban_command_enabled": "yes"}, "ban_command_enabled: must be true or false"),
        ({"spool_max_bytes": 1000}, "spool_max_bytes: must be between 65536 and"),
        ({"heartbeat_interval_seconds": 0}, "heartbeat_interval_seconds: must be between 1 and 86400"),
        ({"spool_dir": "spool"}, "spool_dir: must be an absolute path"),
        ({"rule_overrides": []}, "rule_overrides: must be an object keyed by rule id"),
        (
            {"rule_overrides": {"game-bruteforce": {"threshold": 0}}},
            "rule_overrides.game-bruteforce.threshold: must be a positive integer, got 0",
        ),
        (
            {"rule_overrides": {"game-bruteforce": {"thresold": 3}}},
            "rule_overrides.game-bruteforce.thresold: unknown key",
        ),
        ({"listen_addr": "127.0.0.1"}, "listen_addr: unknown key"),
    ],
)
def test_validation_errors_are_one_line_and_name_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(with_changes(**changes))
    text = str(err.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_load_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^cannot read config"):
        load_config(tmp_path / "absent.json")
    path = tmp_path / "agent.json"
    path.write_text("{'client': 'acme'}", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_config(path)
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^config must be a JSON object$"):
        load_config(path)
    path.write_text(json.dumps(MINIMAL), encoding="utf-8")
    assert load_config(path).host == "game-01"


def test_collector_token_is_accepted_and_never_shown() -> None:
    from sentry_agent.config import ConfigError, parse_config

    base = {"client": "c", "tier": "t", "host": "h", "sources": [{"name": "game", "path": "/var/log/g.log"}]}
    config = parse_config({**base, "collector_token": "TOKEN-123456789"})
    assert config.collector_token == "TOKEN-123456789"
    assert "TOKEN-123456789" not in repr(config)
    assert parse_config(base).collector_token == ""
    try:
        parse_config({**base, "collector_token": 12345678})
    except ConfigError as exc:
        assert "12345678" not in str(exc)
    else:
        raise AssertionError("a non-string token must be refused")


def test_collector_settings_are_validated_strictly() -> None:
    from sentry_agent.config import ConfigError, parse_config

    base = {"client": "c", "tier": "t", "host": "h", "sources": [{"name": "game", "path": "/var/log/g.log"}]}
    wired = {
        **base,
        "collector_url": "https://10.213.0.1:8443",
        "collector_cert_sha256": "ab" * 32,
        "collector_token": "TOKEN-123456789",
    }
    config = parse_config({**wired, "ship_interval_seconds": 1, "collector_timeout_seconds": 3})
    assert config.shipping_enabled and config.collector_address == ("10.213.0.1", 8443)
    assert (config.ship_interval_seconds, config.collector_timeout_seconds) == (1.0, 3.0)
    assert parse_config({**wired, "collector_url": "https://[::1]:9443/"}).collector_address == ("::1", 9443)
    assert not parse_config(base).shipping_enabled
    bad = [
        ({"collector_url": "http://10.213.0.1:8443"}, r"^collector_url: must look like https://ADDR:PORT"),
        ({"collector_url": "https://10.213.0.1"}, r"^collector_url: "),
        ({"collector_url": "https://10.213.0.1:70000"}, r"^collector_url: "),
        ({"collector_url": "https://h:1/v1/ingest"}, r"^collector_url: "),
        ({"collector_cert_sha256": "AB" * 32}, r"^collector_cert_sha256: must be 64 lowercase hex"),
        ({"collector_cert_sha256": ""}, r"^collector_cert_sha256: required when collector_url is set"),
        ({"collector_token": ""}, r"^collector_token: required when collector_url is set"),
        ({"ship_interval_seconds": 0}, r"^ship_interval_seconds: must be between"),
        ({"collector_timeout_seconds": "10"}, r"^collector_timeout_seconds: must be a number"),
        ({"quarantine_max_bytes": 10}, r"^quarantine_max_bytes: must be between"),
    ]
    for change, message in bad:
        with pytest.raises(ConfigError, match=message):
            parse_config({**wired, **change})
    # The token never appears in an error, even a wrong one next to it.
    with pytest.raises(ConfigError) as info:
        parse_config({**wired, "collector_url": "nope"})
    assert "TOKEN-123456789" not in str(info.value)

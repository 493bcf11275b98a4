"""Command line: ``python3 -m sentry_agent --config /etc/sentry/agent.json [--check-config]``.

Exit codes:

- 0: clean shutdown on SIGTERM/SIGINT, or ``--check-config`` found config and rules valid.
- 1: ``--check-config`` found a problem; or the agent could not start (directory, port).
- 2: the agent was asked to run but the config, the rules or the release's VERSION is invalid. One line on
  stderr says why, so a release with broken rules fails its start and therefore its health check.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from . import VersionError, default_rules_path, read_version
from .config import AgentConfig, ConfigError, load_config
from .daemon import Agent
from .rules import RulesError, RuleSet, load_rules
from .signals import StopSignal

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2

log = logging.getLogger("sentry_agent")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sentry_agent", description="Sentry host agent.")
    parser.add_argument("--config", type=Path, default=Path("/etc/sentry/agent.json"), help="config file")
    parser.add_argument(
        "--check-config", action="store_true", help="validate config and rules, print one line, exit 0/1"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--version", action="store_true", help="print the release version and exit")
    return parser.parse_args(argv)


def load_all(config_path: Path) -> tuple[str, AgentConfig, RuleSet]:
    """Version, config and rules, or ConfigError/RulesError/VersionError with a one-line message."""
    version = read_version()
    config = load_config(config_path)
    rules = load_rules(config.rules_file or default_rules_path(), config.rule_overrides)
    return version, config, rules


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    # journald adds timestamps and the unit name; repeating them would only add noise.
    logging.basicConfig(stream=sys.stderr, level=args.log_level, format="%(levelname)s %(name)s: %(message)s")

    if args.version:
        try:
            print(read_version())
        except VersionError as exc:
            print(f"sentry-agent: {exc}", file=sys.stderr)
            return EXIT_INVALID
        return EXIT_OK

    try:
        version, config, rules = load_all(args.config)
    except (ConfigError, RulesError, VersionError) as exc:
        print(f"sentry-agent: invalid: {exc}", file=sys.stderr)
        return EXIT_FAILED if args.check_config else EXIT_INVALID

    active, inactive = rules.split(config.sources)
    if args.check_config:
        note = " (self_test=fail: /healthz will report failing)" if rules.self_test_fail else ""
        print(
            f"sentry-agent: OK: agent {version}, config {args.config}, rules {rules.version} "
            f"({len(active)} active, {len(inactive)} inactive){note}"
        )
        return EXIT_OK

    return _run(Agent(config, rules, version))


def _run(agent: Agent) -> int:
    stop = StopSignal()
    stop.install((signal.SIGTERM, signal.SIGINT))
    try:
        try:
            agent.start()
        except OSError as exc:
            print(f"sentry-agent: cannot start: {exc}", file=sys.stderr)
            agent.shutdown()
            return EXIT_FAILED
        assert agent.http is not None
        host, port = agent.http.address
        log.info(
            "sentry-agent %s started for %s/%s: rules %s (%d active, %d inactive), listening on http://%s:%d",
            agent.version,
            agent.config.client,
            agent.config.host,
            agent.rules.version,
            len(agent.active_rules),
            len(agent.inactive_rules),
            host,
            port,
        )
        try:
            agent.run(stop)
        finally:
            if stop.signum is not None:
                log.info("received %s, shutting down", signal.Signals(stop.signum).name)
            agent.shutdown()
    finally:
        stop.close()
    log.info("stopped")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

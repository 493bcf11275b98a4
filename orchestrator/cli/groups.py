"""Assemble the command tree."""

from __future__ import annotations

import click

from . import (
    audit,
    client,
    collector,
    defence,
    demo,
    exec_,
    fleet,
    hosts,
    incidents,
    lab,
    ledger,
    preflight,
    provision,
    release,
    report,
    rollout,
    training,
)

BUILT: list[click.Command] = [
    lab.lab,
    client.client,
    hosts.hosts,
    preflight.preflight,
    provision.provision,
    release.release,
    rollout.rollout,
    training.training,
    exec_.exec_,
    ledger.ledger,
    audit.audit,
    report.report,
    demo.demo,
    collector.collector,
    fleet.fleet,
    incidents.incidents,
    defence.defence,
]


def register(root: click.Group) -> None:
    for command in BUILT:
        root.add_command(command)

"""Assemble the command tree: built commands first, planned ones fill the rest."""

from __future__ import annotations

import click

from . import audit, client, demo, exec_, hosts, lab, ledger, preflight, provision, release, rollout, training
from .planned import planned_commands

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
    demo.demo,
]


def register(root: click.Group) -> None:
    for command in BUILT:
        root.add_command(command)
    for command in planned_commands(exclude={c.name for c in BUILT if c.name}):
        root.add_command(command)

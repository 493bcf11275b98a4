"""What a client inventory may contain: the shape of every file, and the variables Ansible would act on.

An inventory is data that lives in a repository and is edited by hand; Ansible treats much of it as code.
Two rules keep it data:

* Connection variables are an allowlist (:data:`CONNECTION_VARS`), each validated. Every other ``ansible_*``
  variable is refused: the SSH arguments, the connection plugin, host key checking, proxies, the executables
  Ansible starts, privilege escalation. sentryctl sets how it connects itself (and passes those settings as
  extra variables, which no inventory value can override), so a value there could only weaken it.
* No value is a template: Ansible renders ``{{ ... }}`` in an inventory value on the controller, where a
  ``lookup('pipe', ...)`` runs any command.

Each refusal is one line naming the file, the key and the fix. Shapes are checked with pydantic models.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import InventoryError

# Full-string patterns only (re.fullmatch): a '$' anchor lets a trailing newline through.
CLIENT_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,38}[a-z0-9]|[a-z]")
HOST_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
GROUP_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
DNS_RE = re.compile(r"(?=.{1,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9-]{1,63})*")
USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
VAR_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# No whitespace, quotes, '%' or '$': the path goes into ssh_config and onto ssh's command line verbatim.
KEY_PATH_RE = re.compile(r"~?[A-Za-z0-9._/@+=,:-]{1,1024}")
INTERPRETER_RE = re.compile(r"auto|auto_silent|auto_legacy|auto_legacy_silent|/[A-Za-z0-9._/+-]{1,255}")
CONTACT_RE = re.compile(r"[^<>\x00-\x1f\x7f]{1,80}<[^@<>\s\"\\]+@[^@<>\s\"\\]+\.[^@<>\s\"\\]+>")
TEMPLATE_MARKERS = ("{{", "{%", "{#")

CONNECTION_VARS = (
    "ansible_host",
    "ansible_port",
    "ansible_user",
    "ansible_ssh_private_key_file",
    "ansible_python_interpreter",
)
# Names Ansible defines itself; an inventory value would shadow them in every template.
RESERVED_VARS = frozenset(
    {
        "hostvars",
        "groups",
        "group_names",
        "inventory_hostname",
        "inventory_hostname_short",
        "inventory_dir",
        "inventory_file",
        "omit",
        "play_hosts",
        "playbook_dir",
        "role_name",
        "role_path",
        "environment",
    }
)
KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
CONNECTION_HINT = f"an inventory may set only {', '.join(CONNECTION_VARS)}; sentryctl sets every other SSH setting"


def _why_refused(name: str) -> str:
    if name.startswith(("ansible_ssh_", "ansible_sftp_", "ansible_scp_", "ansible_paramiko_")):
        return "it changes how SSH connects"
    if name in ("ansible_connection", "ansible_host_key_checking", "ansible_pipelining", "ansible_timeout"):
        return "it changes how SSH connects"
    if name.startswith("ansible_become"):
        return "privilege escalation is decided by sentryctl's playbooks"
    if name in ("ansible_password", "ansible_ssh_pass"):
        return "sentryctl logs in with keys only"
    if name.startswith(("ansible_shell_", "ansible_module_", "ansible_remote_tmp")):
        return "it changes what runs on the host"
    return "it is not a connection setting sentryctl allows"


# ------------------------------------------------------------------------------------------- single values


def validate_client_name(name: str) -> str:
    if not isinstance(name, str) or not CLIENT_NAME_RE.fullmatch(name):
        raise InventoryError(
            f"invalid client name {name!r}",
            hint="use lowercase letters, digits and dashes, starting with a letter (at most 40)",
        )
    return name


def validate_address(value: object) -> str:
    text = str(value)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        # All-numeric labels are a mistyped IPv4 address, never a name (RFC 1123 forbids a numeric TLD).
        if DNS_RE.fullmatch(text) and not text.rsplit(".", 1)[-1].isdigit():
            return text
    raise InventoryError(f"invalid host address {value!r}", hint="give an IPv4/IPv6 address or a DNS name")


def validate_port(value: object) -> int:
    text = str(value)
    port = int(text) if not isinstance(value, bool) and text.isascii() and text.isdigit() else -1
    if not 1 <= port <= 65535:
        raise InventoryError(f"invalid SSH port {value!r}", hint="use a number from 1 to 65535")
    return port


def validate_user(value: object) -> str:
    if not isinstance(value, str) or not USER_RE.fullmatch(value):
        raise InventoryError(f"invalid SSH user {value!r}", hint="use a plain Unix user name")
    return value


def validate_key_path(value: object) -> str:
    if not isinstance(value, str) or not KEY_PATH_RE.fullmatch(value):
        raise InventoryError(
            f"invalid SSH key path {value!r}", hint="use a path without spaces, quotes, '%', '$' or newlines"
        )
    return value


def validate_interpreter(value: object) -> str:
    if not isinstance(value, str) or not INTERPRETER_RE.fullmatch(value):
        raise InventoryError(
            f"invalid ansible_python_interpreter {value!r}", hint="use auto_silent or an absolute path"
        )
    return value


def validate_contact(value: object) -> str:
    if not isinstance(value, str) or not CONTACT_RE.fullmatch(value.strip()):
        raise InventoryError(f"invalid contact {value!r}", hint='write "Full Name <mail@example.com>"')
    return value.strip()


_VALIDATORS = {
    "ansible_host": validate_address,
    "ansible_port": validate_port,
    "ansible_user": validate_user,
    "ansible_ssh_private_key_file": validate_key_path,
    "ansible_python_interpreter": validate_interpreter,
}


def _no_template(file: Path, where: str, value: Any) -> None:
    if isinstance(value, str):
        if any(m in value for m in TEMPLATE_MARKERS):
            raise InventoryError(
                f"{file}: {where} holds a template ({value[:40]!r}); Ansible would render it on the controller",
                hint="inventory values are data: write the value itself",
            )
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _no_template(file, f"{where}.{k}", k)
            _no_template(file, f"{where}.{k}", v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_template(file, f"{where}[{i}]", v)


def check_vars(file: Path, where: str, variables: Mapping[Any, Any]) -> dict[str, Any]:
    """Refuse any variable Ansible would act on beyond the allowlist; return the variables, validated."""
    checked: dict[str, Any] = {}
    for name, value in variables.items():
        label = f"{where}: variable {name}" if where else f"variable {name}"
        if not isinstance(name, str) or not VAR_NAME_RE.fullmatch(name):
            raise InventoryError(f"{file}: {label!r} is not a valid variable name", hint="use letters, digits, _")
        if name in RESERVED_VARS:
            raise InventoryError(f"{file}: {label} is reserved by Ansible", hint="rename it (e.g. with sentry_)")
        if name.startswith("ansible_") and name not in _VALIDATORS:
            raise InventoryError(
                f"{file}: {label} is not allowed in an inventory: {_why_refused(name)}", hint=CONNECTION_HINT
            )
        _no_template(file, label, value)
        if name in _VALIDATORS:
            try:
                checked[name] = _VALIDATORS[name](value)
            except InventoryError as exc:
                raise InventoryError(f"{file}: {label}: {exc.message}", hint=exc.hint) from None
        else:
            checked[name] = value
    return checked


# ------------------------------------------------------------------------------------------- file shapes


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class GroupModel(_Strict):
    hosts: dict[str, dict[str, Any] | None] | None = None
    vars: dict[str, Any] | None = None
    children: dict[str, GroupModel | None] | None = None


class HostsFileModel(_Strict):
    all: GroupModel


class ClientFileModel(_Strict):
    client: str
    tier: str
    window: str = "always"
    support_hours: str | None = None
    contacts: list[str] | None = None
    lab: bool = False
    paging: dict[str, str] | None = None


PAGE_TARGETS = ("primary", "second_line")
PAGING_SECRETS = ("paging_primary", "paging_second_line")


def validate_paging(value: Mapping[str, str]) -> None:
    """client.yml ``paging``: ladder target -> vault secret name; both from known lists, so a typo is refused when
    the inventory loads, not when a page is due at night."""
    for target, secret in value.items():
        if target not in PAGE_TARGETS:
            raise InventoryError(f"paging: {target!r} is not a paging target", hint=f"use {', '.join(PAGE_TARGETS)}")
        if secret not in PAGING_SECRETS:
            raise InventoryError(
                f"paging: {target}: {secret!r} is not a paging secret", hint=f"use {', '.join(PAGING_SECRETS)}"
            )


_FIXES = {
    "dict_type": "must be a mapping (key: value), not {kind}",
    "model_type": "must be a mapping (key: value), not {kind}",
    "list_type": "must be a list, not {kind}",
    "string_type": "must be a string, not {kind}",
    "bool_type": "must be true or false, not {kind}",
    "missing": "is required",
    "extra_forbidden": "is not a known key",
}


def _kind(value: object) -> str:
    return {list: "a list", dict: "a mapping", str: "a string", int: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def parse_shape(model: type[BaseModel], file: Path, data: object, hint: str) -> Any:
    """``data`` as ``model``, or one InventoryError naming the file, the first bad key and the fix."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        # pydantic names the arm of a union it tried ("function-after", "dict[...]"): keep only the keys.
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("dict[", "list[", "GroupModel")))
        what = _FIXES.get(err["type"], err["msg"]).format(kind=_kind(err.get("input")))
        raise InventoryError(f"{file}: {loc or 'the file'} {what}", hint=hint) from None


# ------------------------------------------------------------------------------------------- known_hosts


def check_known_hosts(path: Path, client: str) -> None:
    """Every line of a pinned known_hosts is an OpenSSH host key entry (so no SSH client chokes on it)."""
    hint = f"re-pin with 'sentryctl hosts pin --client {client}'"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{path} cannot be read: {exc}", hint=hint) from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        problem = None
        if len(fields) < 3:
            problem = "expected HOST KEYTYPE BASE64"
        elif fields[1] not in KEY_TYPES:
            problem = f"unknown key type {fields[1][:40]!r}"
        else:
            try:
                blob = base64.b64decode(fields[2], validate=True)
            except (binascii.Error, ValueError):
                blob = b""
            size = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
            if blob[4 : 4 + size].decode("ascii", errors="replace") != fields[1]:
                problem = "the key is not valid base64 of that key type"
        if problem:
            raise InventoryError(f"{path}: line {number} is not a host key entry ({problem})", hint=hint)

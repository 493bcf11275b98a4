"""sentry_baseline: the service account, sudoers, sshd hardening, the login banner, the local fact."""

from __future__ import annotations

from typing import Any

from ..expected import Expected
from .base import Check, Finding, compare, expect_file, file_facts, json_file, missing

SSHD_DROPIN = "/etc/ssh/sshd_config.d/50-sentry.conf"
SSHD_HARDENED = {
    "passwordauthentication": "no",
    "kbdinteractiveauthentication": "no",
    "permitrootlogin": "without-password",
    "x11forwarding": "no",
    "maxauthtries": "3",
    "logingracetime": "30",
    "banner": "/etc/issue.net",
}


def _sshd_effective(host: Any) -> dict[str, str]:
    out = host.check_output("sshd -T")
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def service_account(host: Any, exp: Expected) -> Finding:
    user = host.user("sentry")
    if not user.exists:
        return Finding(False, "account sentry exists", "no account sentry")
    password = host.check_output("getent shadow sentry").split(":")[1]
    return compare(
        {"system account": True, "shell": "/usr/sbin/nologin", "password locked": True},
        {"system account": user.uid < 1000, "shell": user.shell, "password locked": password.startswith(("!", "*"))},
    )


def sudoers(host: Any, exp: Expected) -> Finding:
    path = "/etc/sudoers.d/sentry"
    facts = file_facts(host, path)
    if not facts["exists"]:
        return missing(path)
    valid = host.run(f"visudo -cf {path}").rc == 0
    content = host.file(path).content_string
    commands = [line.split("NOPASSWD:", 1)[1].strip() for line in content.splitlines() if "NOPASSWD:" in line]
    narrow = bool(commands) and all(c.startswith("/") and "ALL" not in c.split() and "*" not in c for c in commands)
    return compare(
        {**expect_file("root:root", "0440"), "valid": True, "only absolute commands": True},
        {**facts, "valid": valid, "only absolute commands": narrow},
    )


def sshd_hardening(host: Any, exp: Expected) -> Finding:
    effective = _sshd_effective(host)
    return compare(SSHD_HARDENED, {k: effective.get(k) for k in SSHD_HARDENED})


def sshd_crypto(host: Any, exp: Expected) -> Finding:
    effective = _sshd_effective(host)
    weak = [c for c in effective.get("ciphers", "").split(",") if "cbc" in c or "3des" in c]
    weak += [m for m in effective.get("macs", "").split(",") if "sha1" in m or "md5" in m or "etm" not in m]
    weak += [k for k in effective.get("kexalgorithms", "").split(",") if "sha1" in k or "nistp" in k]
    return compare({"weak algorithms": []}, {"weak algorithms": weak})


def sshd_dropin(host: Any, exp: Expected) -> Finding:
    facts = file_facts(host, SSHD_DROPIN)
    touches_keys = facts["exists"] and "hostkey " in host.file(SSHD_DROPIN).content_string.lower()
    return compare(
        {**expect_file("root:root", "0644"), "sets host keys": False}, {**facts, "sets host keys": touches_keys}
    )


def banner(host: Any, exp: Expected) -> Finding:
    text = host.file("/etc/issue.net").content_string if host.file("/etc/issue.net").exists else ""
    wanted = {"client": exp.client, "support contact": exp.support_contact, "support hours": exp.support_hours}
    return compare(
        {k: "named" for k in wanted}, {k: "named" if v in text else f"missing {v!r}" for k, v in wanted.items()}
    )


def local_fact(host: Any, exp: Expected) -> Finding:
    path = "/etc/ansible/facts.d/sentry.fact"
    facts, fact = json_file(host, path)
    if fact is None:
        return missing(path)
    expected: dict[str, Any] = {"mode": "0644", "client": exp.client, "tier": exp.tier}
    found: dict[str, Any] = {"mode": facts["mode"], "client": fact.get("client"), "tier": fact.get("tier")}
    if "agent" in exp.components:
        expected["release"], found["release"] = exp.release, fact.get("release")
    return compare(expected, found)


CHECKS = (
    Check("baseline.service-account", "The sentry service account is a locked system account without a login shell.",
          "baseline", service_account),
    Check("baseline.sudoers", "/etc/sudoers.d/sentry is root-owned 0440, valid, and grants only absolute commands.",
          "baseline", sudoers),
    Check("baseline.sshd-hardening", "sshd refuses passwords and keyboard-interactive logins and limits auth tries.",
          "baseline", sshd_hardening),
    Check("baseline.sshd-crypto", "sshd offers no CBC, SHA-1, MD5 or NIST-curve algorithms.", "baseline", sshd_crypto),
    Check("baseline.sshd-dropin", "The sshd hardening drop-in is root-owned 0644 and never sets host keys.",
          "baseline", sshd_dropin),
    Check("baseline.banner", "The login banner names the client, its support contact and support hours.",
          "baseline", banner),
    Check("baseline.local-fact", "The local fact records the client, tier and release that the ledger records.",
          "baseline", local_fact),
)  # fmt: skip

"""Defence packs: build, sign and catalog them (B), push them canary-first and revert them (C)."""

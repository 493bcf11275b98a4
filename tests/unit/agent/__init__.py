"""Tests of the Sentry agent (agent/sentry_agent): stdlib only, fast, loopback only."""

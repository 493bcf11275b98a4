"""The demo's steps, grouped by what they show: the fleet coming up, releases, security, telemetry."""

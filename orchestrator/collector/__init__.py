"""Sentry's collector: the HTTPS service agents report alerts and heartbeats to (docs/telemetry-protocol.md).

Importing this package is cheap; the web application (:mod:`.app`, FastAPI) and the server (:mod:`.server`,
uvicorn) are imported only by the code that runs them.
"""

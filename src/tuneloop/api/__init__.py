"""The HTTP API: app factory, auth, limits, routers and their schemas."""

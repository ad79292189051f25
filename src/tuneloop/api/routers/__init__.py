"""Routers: each parses input, calls one service or repository function, formats output."""

"""Thin services behind the routers that need more than one repository call."""

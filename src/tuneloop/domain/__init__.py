"""Pure value types shared by the stages; no framework imports."""

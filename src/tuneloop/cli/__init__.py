"""The ``tuneloop`` command line (Typer): one module per group of commands."""

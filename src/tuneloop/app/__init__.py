"""The application layer: one function per use case, called by every entry point."""

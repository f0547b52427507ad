"""The run folder: its layout, the one writer and the one reader (run-format.md, docs/architecture.md)."""

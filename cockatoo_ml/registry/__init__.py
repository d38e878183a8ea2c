"""Readable defaults for every stage. Change a value here to change the project's default; flags, environment
variables and TOML files override these per run (docs/configuration.md)."""

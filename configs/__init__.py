"""Presets, installed with the package: each file's get_config() or get_study()
is what the command at the top of its docstring runs."""

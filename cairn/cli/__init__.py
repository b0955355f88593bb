"""The ``cairn`` command: a Typer app (`cairn.cli.app`) and one module per command group.

Public submodule: `cairn.cli.app` (``main``, the console script's entry point). The others
(`demo`, `errors`, `memory`, `memory_commands`, `runs`, `server`) serve the commands.
"""

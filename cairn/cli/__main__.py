"""``python -m cairn.cli``: the ``cairn`` command."""

from cairn.cli.app import main

main()

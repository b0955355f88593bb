"""``python -m cairn.mcp``: the ``cairn mcp`` command on its own."""

from cairn.mcp.command import main

main()

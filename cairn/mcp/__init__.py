"""Cairn memory over MCP: tools and resources bound to one tenant and a set of grants.

Public submodules:

- `cairn.mcp.server`: `build_server`, `serve_stdio` and `serve_http`.
- `cairn.mcp.config`: `McpConfig`, what a server is bound to.
- `cairn.mcp.command`: the ``cairn mcp`` command (``python -m cairn.mcp``).

The others (`tools`, `resources`, `views`, `access`) serve the server. Importing `cairn.mcp`
loads none of them, so the CLI can offer the command without the ``mcp`` extra installed.
"""

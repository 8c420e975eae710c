"""``webml serve``: the WebNN API for JavaScript programs over one WebSocket per client (issue 15).

The wire protocol is docs/serve-protocol.md.  Modules: :mod:`.frames` (the
binary frames), :mod:`.grants` (the user's origin grants), :mod:`.token` (the
token file), :mod:`.policy` (Permissions-Policy), :mod:`.quotas`,
:mod:`.audit`, :mod:`.replay` (a graph description through MLGraphBuilder),
:mod:`.session` (one connection's calls), :mod:`.app` (the ASGI app).
"""

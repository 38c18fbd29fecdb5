"""Transport for clients: aiohttp handlers that parse, call one service method, render JSON.

`http.py` holds the route decorator, the middlewares and body parsing; `client/` has one module
per OpenAPI file of the spec's client-server API; `media_responses.py` the parameters and
headers both media modules share; `pages.py` the few HTML pages. May import
`homeserver.services` and below, never `homeserver.app`.
"""

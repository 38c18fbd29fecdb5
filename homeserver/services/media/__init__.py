"""Media: the content repository (`repository`), media of other servers (`remote`),
thumbnails, and URL previews (with `opengraph` parsing).

May use: `auth`, `clock`. Nothing else in services.
"""

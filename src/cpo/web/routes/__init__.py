"""The page areas of the web app: one module per area, each exposing ``router``.

:data:`cpo.web.app.ROUTERS` lists the modules the app includes.
"""

"""The API's routers, one module per area; :data:`ROUTERS` lists them for ``create_api``."""

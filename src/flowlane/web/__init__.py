"""The HTTP shell: public endpoints (forms, signed links, inbound hooks) and, later, the UI."""

from flowlane.web.app import Container, create_app

__all__ = ["Container", "create_app"]

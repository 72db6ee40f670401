"""The REST API (``/api/v1``): FastAPI routers over the services; the rules live in services.

Layout: ``app.py`` (``create_api``, ``ROUTERS``), ``container.py`` (``Container``),
``errors.py`` (the one error -> HTTP status table, problem+json), ``deps.py`` (principal,
account, ``Call``), ``pagination.py`` (``PageDep``, ``Page[T]``), ``schemas.py`` (shared
models, ``PROBLEM_RESPONSES``, ``Strict``), ``limits.py`` (body size per path pattern),
``routes/`` (one router per area).

How to add a route
------------------
1. In ``routes/<area>.py`` (new area: ``router = APIRouter(tags=[...],
   responses=PROBLEM_RESPONSES)``, then add it to ``ROUTERS`` in ``app.py``)::

       @router.get("/things/{key}")
       async def get_thing(key: str, call: CallDep) -> Thing:
           rec = await call(lambda acc, by: acc.thing(key, by=by))
           return Thing.of(rec)

   ``call`` authenticates the request (401 / CSRF 403 before the route runs) and runs the
   lambda as one unit of work (``Account.attempt``: all or nothing) under the store lock,
   with ``by`` = the principal's user id. Never pass ``by=None``: permissions are checked
   in the services (``services/permissions.py``), not in routes.
2. Request bodies subclass ``Strict`` (unknown keys -> 422); responses are pydantic models
   (never a store record as is; users never show ``password``).
3. Lists take ``paging: PageDep`` and return ``Page[T].of(items, total, paging)``.
4. Errors: raise (or let services raise) ``flowlane.core.errors`` classes; the table in
   ``errors.py`` maps them to statuses. Do not raise ``HTTPException``.
5. Larger bodies (uploads): add a ``(pattern, bytes)`` to ``limits.DEFAULT_LIMITS``.
6. Tests: ``tests/api/conftest.py`` gives ``client``, ``headers(role)``, ``users`` and more.
"""

from flowlane.api.app import create_api
from flowlane.api.container import Container

__all__ = ["Container", "create_api"]

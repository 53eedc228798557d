"""The service assembled: the book opened or attached (:func:`~.core.open_service`), the risk desk's standing
parameters restored, the scheduler, and the FastAPI app whose lifespan starts and stops the scheduler."""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tokenclear.service.actions import restore_parameters
from tokenclear.service.api import create_app
from tokenclear.service.core import Service, open_service
from tokenclear.service.scheduler import Scheduler
from tokenclear.settings import Settings


def build(settings: Settings, *, database: str | None, rpc_url: str | None, clock, members: int | None = None,
          tick_s: float = 1.0, schedule: bool = True) -> tuple[FastAPI, Service, Scheduler]:
    service = open_service(settings, database=database, rpc_url=rpc_url, clock=clock, members=members)
    gc.collect()
    gc.freeze()  # the opened book's objects live as long as the process: keep them out of every later collection
    restore_parameters(service)
    scheduler = Scheduler(service, tick_s=tick_s)
    app = create_app(service, scheduler)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if schedule:
            scheduler.start()
        try:
            yield
        finally:
            if schedule:
                scheduler.stop()
            app.state.audit.close()

    app.router.lifespan_context = lifespan
    return app, service, scheduler

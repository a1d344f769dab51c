"""``jobs``, ``jobs_run``, ``jobs_history``, ``jobs_pause``, ``jobs_resume``: what ``corral jobs``
shows and does (the service: ``corral.jobs.service``, started by the first of these if needed)."""

from __future__ import annotations

import asyncio
from typing import Any

from corral.daemon.ops.apps import PROGRESS, Context, UserError, command
from corral.exceptions import UserMistake
from corral.jobs.service import service_of


def _service(ctx: Context) -> Any:
    return service_of(ctx.supervisor.core)


@command("jobs")
async def jobs(ctx: Context, args: dict[str, Any]) -> Any:
    return {"jobs": _service(ctx).rows()}


@command("jobs_run")
async def jobs_run(ctx: Context, args: dict[str, Any]) -> Any:
    """Run now; each chunk of its output is a progress message ``{"stream", "text"}``; the reply is
    how it ended (``outcome``, ``code``, ``signal``)."""
    service = _service(ctx)
    progress = PROGRESS.get()
    ended: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    def listener(data: dict[str, Any]) -> None:
        if "end" in data:
            if not ended.done():
                ended.set_result(data["end"])
        elif progress is not None:
            progress(data)

    try:
        service.run_now(args["name"], listener)
    except UserMistake as exc:
        raise UserError(str(exc)) from None
    return await ended


@command("jobs_history")
async def jobs_history(ctx: Context, args: dict[str, Any]) -> Any:
    service = _service(ctx)
    try:
        service.job(args["name"])
    except UserMistake as exc:
        raise UserError(str(exc)) from None
    return {"runs": service.history.runs(args["name"], int(args.get("limit") or 20))}


async def _pause(ctx: Context, name: str, paused: bool) -> Any:
    try:
        _service(ctx).pause(name, paused)
    except UserMistake as exc:
        raise UserError(str(exc)) from None
    return {"name": name, "paused": paused}


@command("jobs_pause")
async def jobs_pause(ctx: Context, args: dict[str, Any]) -> Any:
    return await _pause(ctx, args["name"], True)


@command("jobs_resume")
async def jobs_resume(ctx: Context, args: dict[str, Any]) -> Any:
    return await _pause(ctx, args["name"], False)

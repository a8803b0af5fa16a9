"""``/dead-letters``: the events the workers could not handle, and retrying one (admin only).

A worker records an event it cannot handle for a reason of the event's own as a dead letter
and moves on (``infrastructure.eventstore.dead_letters``). An operator lists them here, fixes
the cause (a deploy, a repaired row, a Temporal setting) and marks one for retry; the worker
handles it again within a few seconds, without moving its position back.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from infrastructure.api.dependencies import DeadLetterBoard, admin
from infrastructure.api.problems import documented
from infrastructure.api.schemas import DeadLetterList, DeadLetterView
from infrastructure.eventstore.dead_letters import DeadLetter

# Positions are notification ids: positive, and within a 64-bit integer on both databases.
Position = Annotated[int, Path(ge=1, le=2**63 - 1)]
Consumer = Annotated[str, Path(max_length=64)]

router = APIRouter(dependencies=[admin], responses=documented(401, 403, 422), tags=["admin"])


@router.get(
    "/dead-letters",
    response_model=DeadLetterList,
    responses=documented(404),
    summary="Dead letters of both workers (or of one: ?consumer=pipeline_worker|read_worker)",
)
def list_dead_letters(
    board: DeadLetterBoard,
    consumer: Annotated[str | None, Query(max_length=64)] = None,
) -> DeadLetterList:
    return DeadLetterList(items=[_view(name, letter) for name, letter in board.list(consumer)])


@router.post(
    "/dead-letters/{consumer}/{position}/retry",
    response_model=DeadLetterView,
    status_code=status.HTTP_202_ACCEPTED,
    responses=documented(404),
    summary="Marks a dead letter for retry; its worker handles the event again",
)
def retry_dead_letter(
    board: DeadLetterBoard, consumer: Consumer, position: Position
) -> DeadLetterView:
    return _view(consumer, board.retry(consumer, position))


def _view(consumer: str, letter: DeadLetter) -> DeadLetterView:
    return DeadLetterView(
        consumer=consumer,
        position=letter.position,
        topic=letter.topic,
        originator_id=letter.originator_id,
        originator_version=letter.originator_version,
        error=letter.error,
        status=letter.status.value,
        attempts=letter.attempts,
        recorded_at=letter.recorded_at,
        updated_at=letter.updated_at,
    )

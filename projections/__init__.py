"""Read models fed by the event store, each rebuildable from event zero (see ``runner``)."""

from __future__ import annotations

from projections.audit_trail import AuditTrailProjection
from projections.case_list import CaseListProjection
from projections.notifications import NotificationOutboxProjection
from projections.runner import Projection
from projections.systemic import SystemicProjection

PROJECTIONS: dict[str, type[Projection]] = {
    cls.name: cls
    for cls in (CaseListProjection, AuditTrailProjection, SystemicProjection, NotificationOutboxProjection)
}


def all_projections() -> list[Projection]:
    return [cls() for cls in PROJECTIONS.values()]

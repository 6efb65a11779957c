"""Read models fed by the event store, each rebuildable from event zero (see ``runner``)."""

from __future__ import annotations

from projections.audit_trail import AuditTrailProjection
from projections.case_list import CaseListProjection
from projections.channels import ChannelsConfig
from projections.notifications import NotificationOutboxProjection
from projections.runner import Projection
from projections.systemic import SystemicProjection

PROJECTIONS: dict[str, type[Projection]] = {
    cls.name: cls
    for cls in (CaseListProjection, AuditTrailProjection, SystemicProjection, NotificationOutboxProjection)
}


def all_projections(channels: ChannelsConfig | None = None) -> list[Projection]:
    """Every read model; the notification outbox addresses people on the ``channels`` configured (none
    given: the inbox alone)."""
    return [
        NotificationOutboxProjection(channels=channels) if cls is NotificationOutboxProjection else cls()
        for cls in PROJECTIONS.values()
    ]

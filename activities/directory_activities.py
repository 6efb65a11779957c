"""The directory lookups the workflow calls (local activities, like the append).

They read the directory and the case list and decide nothing: routing and the choice of responders are
the pure core's (``workflows.core.directory``), applied here only to know which team's candidates and
which people to look up, and applied again by the workflow to the answer, which Temporal records.
Without a directory (an in-memory deployment) they answer that nothing is known: cases still get their
team, unowned, and escalations record no responders.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from temporalio import activity

from activities.contract import OPENING_CONTEXT, RESOLVE_RESPONDERS, OpeningRequest, RespondersRequest
from workflows.core.commands_opening import routing_facts
from workflows.core.directory import OpeningContext, customer_for, level_specs, matching_rule, route_case
from workflows.core.errors import DomainError
from workflows.core.events import Responder

if TYPE_CHECKING:
    from events.directory_store import DirectoryStore


class DirectoryActivities:
    def __init__(self, directory: DirectoryStore | None) -> None:
        self._directory = directory

    @activity.defn(name=OPENING_CONTEXT)
    async def opening_context(self, request: OpeningRequest) -> OpeningContext:
        directory = self._directory
        if directory is None:
            return OpeningContext()
        command, policy = request.command, request.policy
        account = await directory.account(command.customer.id)
        if policy.routing is None:
            return OpeningContext(account=account)
        try:
            customer = customer_for(command.customer, account)
        except DomainError:
            return OpeningContext(account=account)  # the opening is refused with that rule
        priority = command.priority_override or policy.priority_for(
            command.severity, customer.tier, customer.annual_value
        )
        facts = routing_facts(command, customer.tier, priority)
        _, team_id, _ = matching_rule(policy, facts)
        team = await directory.team_candidates(team_id, datetime.now(UTC))
        route = route_case(policy, facts, team)
        level_one = await directory.resolve(
            level_specs(policy.level(1)),
            team=team_id,
            owner=route.owner,
            category=command.category,
            customer_id=command.customer.id,
        )
        return OpeningContext(account=account, team=team, level_one=level_one)

    @activity.defn(name=RESOLVE_RESPONDERS)
    async def resolve_responders(self, request: RespondersRequest) -> dict[str, list[Responder]]:
        if self._directory is None:
            return {}
        return await self._directory.resolve(
            request.specs,
            team=request.team,
            owner=request.owner,
            category=request.category,
            customer_id=request.customer_id,
        )

    def all(self) -> list:
        return [self.opening_context, self.resolve_responders]

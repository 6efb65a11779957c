"""Responder specs: how a policy names who answers at a level (resolved from the directory when needed)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

# Who answers at a level, resolved from the directory when a case reaches it (workflows/core/directory.py):
#   owner                      the case's owner
#   case_team                  the case's team (its on-call list if it has one, else its members)
#   role:escalation_manager    the case team's escalation manager (role:director: its director)
#   category:director          the director of the case's category (else the case team's director)
#   account:executive_sponsor  the customer account's executive sponsor (account:account_manager likewise)
#   team:<id>                  a named team (on-call list, else members)
#   person:<id>                a named person
ENTRY_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}"
RESPONDER_SPEC = (
    r"^(owner|case_team|role:(escalation_manager|director)|category:director"
    rf"|account:(executive_sponsor|account_manager)|team:{ENTRY_ID_PATTERN}|person:{ENTRY_ID_PATTERN})$"
)
ResponderSpec = Annotated[str, Field(pattern=RESPONDER_SPEC)]
# Specs whose answer depends on the account, which the policy cannot know at publication.
ACCOUNT_SPECS = frozenset({"account:executive_sponsor", "account:account_manager"})

"""The skills rule D4 matches requests and technicians on: "hardware", "network" or
"software:<product>".

One vocabulary for both sides: a request (ticket) asks for one of these, a technician
offers some of them. Its own module so that tickets, technicians and the assignment all
import the same rule (technician.py already imports ticket.py, so it cannot live there
without a cycle)."""

from __future__ import annotations

import re

from weibao.shared.errors import Rejected

SKILL = re.compile(r"(hardware|network|software:\S+)")
WHAT_A_SKILL_IS = 'a skill is "hardware", "network" or "software:<product>"'


def known(skill: object) -> bool:
    return isinstance(skill, str) and SKILL.fullmatch(skill) is not None


def check_skill(skill: object, field: str) -> None:
    if not known(skill):
        raise Rejected("invalid", field, WHAT_A_SKILL_IS)

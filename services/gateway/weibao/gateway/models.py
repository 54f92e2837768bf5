"""The gateway's own bodies (signing in); every service's command bodies are the
shared schemas in weibao.shared.commands, which the services decode with too."""

from __future__ import annotations

from pydantic import Field

from weibao.shared.commands import Body


class Login(Body):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)

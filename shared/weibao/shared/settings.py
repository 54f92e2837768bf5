"""Every environment variable Weibao reads, in one table: its name, type, default and
meaning. This module is the only reader of the environment (a test in tests/ checks
that no other module reads `os.environ`); a process reads it when a part starts (a
service's `serve`, the gateway's app, the `weibao` command) and hands the values down.
A value of the wrong type stops the start naming the variable, instead of failing
later wherever it happened to be read.

The clock pins (`WEIBAO_NOW`, `WEIBAO_TODAY`) are the one exception to "read at start":
`weibao.shared.clock` asks for them at every reading, so a demo or a test can move time
without a restart. `weibao --help` prints the table (`table()`); the README holds the
same table, and a test keeps the two equal."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

TOKEN_TTL_SECONDS = 8 * 3600


class Environment(BaseSettings):
    """The variables, by the part that reads them. Unset: the default."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=True, populate_by_name=True,
                                      env_ignore_empty=True)

    # -- every process -------------------------------------------------------------
    nats_url: str = Field(default="nats://127.0.0.1:4222", validation_alias="NATS_URL",
                          description="the broker; a cluster's nodes comma-separated (tls:// for TLS)")
    nats_seed: str | None = Field(default=None, validation_alias="WEIBAO_NATS_SEED",
                                  description="this process's NATS nkey seed file (else the role's in WEIBAO_KEYS)")
    nats_ca: str | None = Field(default=None, validation_alias="WEIBAO_NATS_CA",
                                description="the CA that signed the broker's certificate")
    keys: str | None = Field(default=None, validation_alias="WEIBAO_KEYS",
                             description="the keys folder: signing/ (who signs, whom to trust) and nats/ (seeds)")
    log_level: str = Field(default="INFO", validation_alias="WEIBAO_LOG_LEVEL",
                           description="DEBUG, INFO, WARNING or ERROR")
    log_format: str = Field(default="", validation_alias="WEIBAO_LOG_FORMAT",
                            description="json or console; unset: JSON unless stderr is a terminal")
    now: str | None = Field(default=None, validation_alias="WEIBAO_NOW",
                            description="pins the clock (ISO time with offset; demos, tests); read at each use")
    today: str | None = Field(default=None, validation_alias="WEIBAO_TODAY",
                              description="pins the business day (YYYY-MM-DD); read at each use")

    # -- a service -------------------------------------------------------------------
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL",
                                     description="its database; unset: sqlite:///var/<service>.db")
    db_schema: str | None = Field(default=None, validation_alias="WEIBAO_DB_SCHEMA",
                                  description="its PostgreSQL schema")
    rpc_workers: int = Field(default=16, validation_alias="WEIBAO_RPC_WORKERS", ge=1, le=1000,
                             description="requests an endpoint works on at once")
    tick_interval: float = Field(default=30.0, validation_alias="WEIBAO_TICK_INTERVAL", gt=0,
                                 description="dispatch: seconds between turns of the deadline clock")
    geofence_m: float = Field(default=500.0, validation_alias="WEIBAO_GEOFENCE_M", gt=0,
                              description="dispatch: how far from the site a check-in counts (metres)")
    official_calendar: str | None = Field(default=None, validation_alias="WEIBAO_OFFICIAL_CALENDAR",
                                          description="dispatch: a TOML of official calendar years entered by hand")
    assess_interval: float = Field(default=3600.0, validation_alias="WEIBAO_ASSESS_INTERVAL", gt=0,
                                   description="contracts: seconds between daily assessments' checks")

    # -- the gateway -----------------------------------------------------------------
    http_host: str = Field(default="127.0.0.1", validation_alias="WEIBAO_HTTP_HOST", description="where it listens")
    http_port: int = Field(default=8000, validation_alias="WEIBAO_HTTP_PORT", ge=1, le=65535, description="its port")
    gateway_timeout: float = Field(default=10.0, validation_alias="WEIBAO_GATEWAY_TIMEOUT", gt=0,
                                   description="seconds a service has to answer before a 504")
    max_body: int = Field(default=2**20, validation_alias="WEIBAO_MAX_BODY", ge=1024,
                          description="largest request body (bytes)")
    # True means exactly one HTTP proxy of ours in front (MDN's "trusted proxy count" rule,
    # count one): the client is the right-most X-Forwarded-For entry, the scheme the
    # right-most X-Forwarded-Proto; false, neither header is read (weibao.gateway.security;
    # deploy/README.md, "Behind a proxy"; issue 12).
    trust_proxy: bool = Field(default=False, validation_alias="WEIBAO_TRUST_PROXY",
                              description="believe X-Forwarded-For/-Proto (only behind your own proxy)")
    token_ttl: int = Field(default=TOKEN_TTL_SECONDS, validation_alias="WEIBAO_TOKEN_TTL", ge=60,
                           description="seconds a sign-in lasts (also how long a revocation is kept)")
    login_max_per_user: int = Field(default=5, validation_alias="WEIBAO_LOGIN_MAX_PER_USER", ge=1,
                                    description="failed sign-ins per user name in 15 minutes")
    login_max_per_address: int = Field(default=20, validation_alias="WEIBAO_LOGIN_MAX_PER_ADDRESS", ge=1,
                                       description="failed sign-ins per address in 15 minutes")
    jwt_secret: str | None = Field(default=None, validation_alias="WEIBAO_JWT_SECRET",
                                   description="signs sign-in tokens; the same for every replica")
    jwt_secret_file: str | None = Field(default=None, validation_alias="WEIBAO_JWT_SECRET_FILE",
                                        description="a file holding it (a compose or Kubernetes secret)")
    jwt_secret_previous: str | None = Field(default=None, validation_alias="WEIBAO_JWT_SECRET_PREVIOUS",
                                            description="the secret before a rotation, still accepted")
    jwt_secret_previous_file: str | None = Field(default=None, validation_alias="WEIBAO_JWT_SECRET_PREVIOUS_FILE",
                                                 description="a file holding that one")
    users: str = Field(default="var/users.json", validation_alias="WEIBAO_USERS",
                       description="an older release's users file, imported once into the users bucket")

    # -- `weibao up` -----------------------------------------------------------------
    nats_port: int = Field(default=4250, validation_alias="WEIBAO_NATS_PORT", ge=1, le=65535,
                           description="the embedded broker's port")
    demo: bool = Field(default=True, validation_alias="WEIBAO_DEMO",
                       description="load the demo data on the first start")
    demo_pulse: str | None = Field(default=None, validation_alias="WEIBAO_DEMO_PULSE",
                                   description="seconds between the demo's steps (default 20; 0 stops them)")

    def explicit(self, name: str) -> str | None:
        """The variable's value when the environment sets it, else None (not the default):
        for the runtime, where unset means "embedded" (no NATS_URL: its own broker)."""
        return str(getattr(self, name)) if name in self.model_fields_set else None

    def secret(self, name: str) -> str | None:
        """A JWT secret (`jwt_secret` or `jwt_secret_previous`): the value, else the file's."""
        value = (getattr(self, name) or "").strip()
        if value:
            return str(value)
        file = getattr(self, f"{name}_file")
        return (Path(file).read_text().strip() or None) if file else None


def environment() -> Environment:
    """The environment as it is now, typed and checked."""
    return Environment()


def pinned(name: str) -> str | None:
    """A clock pin (WEIBAO_NOW, WEIBAO_TODAY), read at each use (see the module's note)."""
    return os.environ.get(name) or None


def table() -> str:
    """The variables as a Markdown table: `weibao --help` and the README print it."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for field in Environment.model_fields.values():
        default = "" if field.default is None else str(field.default).lower() if isinstance(
            field.default, bool) else str(field.default)
        rows.append(f"| `{field.validation_alias}` | {f'`{default}`' if default else ''} | {field.description} |")
    return "\n".join(rows)

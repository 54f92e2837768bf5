"""python -m weibao.gateway: serve HTTP on WEIBAO_HTTP_HOST:WEIBAO_HTTP_PORT.

Refuses to start without WEIBAO_JWT_SECRET (or WEIBAO_JWT_SECRET_FILE): a secret made
up by each process would sign everyone out of every other replica, and at every
restart. `weibao up` (the embedded mode) makes one on its first start and gives it here;
a deployment gives every replica the same one (deploy/README.md). Users come from the
users bucket (`weibao users add`); this process never creates one."""

import sys

import uvicorn

from weibao.gateway.app import create_app
from weibao.gateway.auth import MIN_SECRET_LENGTH, configured_secret
from weibao.shared.logs import configure
from weibao.shared.settings import environment

configure()
secret = configured_secret()
if secret is None or len(secret) < MIN_SECRET_LENGTH:
    sys.exit("weibao.gateway: set WEIBAO_JWT_SECRET (or WEIBAO_JWT_SECRET_FILE, a file holding it) to one secret "
             f"of at least {MIN_SECRET_LENGTH} characters shared by every gateway replica, e.g. "
             "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`; see deploy/README.md")
env = environment()
uvicorn.run(
    create_app(env.nats_url, secret=secret),
    host=env.http_host,
    port=env.http_port,
    log_level=env.log_level.lower(),
    # Forwarded headers are read by the gateway's own middleware (security.SecurityHeaders),
    # and only with WEIBAO_TRUST_PROXY: uvicorn's would believe any local client's.
    proxy_headers=False,
)

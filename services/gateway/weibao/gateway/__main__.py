"""python -m weibao.gateway: serve HTTP on WEIBAO_HTTP_HOST:WEIBAO_HTTP_PORT."""

import os

import uvicorn

from weibao.gateway.app import create_app
from weibao.shared.logs import configure

configure()
uvicorn.run(
    create_app(os.environ.get("NATS_URL", "nats://127.0.0.1:4222")),
    host=os.environ.get("WEIBAO_HTTP_HOST", "127.0.0.1"),
    port=int(os.environ.get("WEIBAO_HTTP_PORT", "8000")),
    log_level=os.environ.get("WEIBAO_LOG_LEVEL", "info").lower(),
    # the phone and console pages are same-origin; a proxy in front sets X-Forwarded-*
    proxy_headers=True,
)

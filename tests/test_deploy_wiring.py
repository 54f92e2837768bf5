"""The deployment files wire what the gateway needs in production (issue 12): one token
secret for every replica, taken from a secret and never written in the file, and the
gateway told it sits behind one proxy (WEIBAO_TRUST_PROXY) only where a proxy is the
only way to reach it. Syntax and wiring only: nothing here runs Docker or Kubernetes
(deploy/README.md, "Not exercised by CI")."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no stubs in the dev set; only safe_load is used

from weibao.shared.settings import Environment

DEPLOY = Path(__file__).parent.parent / "deploy"


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def gateway_deployment() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The gateway's container spec and every document of its manifest."""
    documents = [d for d in yaml.safe_load_all((DEPLOY / "k8s" / "gateway.yaml").read_text()) if d is not None]
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    container = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "gateway")
    return container, documents


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def true(value: str) -> bool:
    """As the gateway reads the variable (pydantic's bool)."""
    return bool(Environment.model_validate({"WEIBAO_TRUST_PROXY": value}).trust_proxy)


def test_compose_gives_the_gateway_its_secret_from_outside_the_file() -> None:
    env = compose()["services"]["gateway"]["environment"]
    # `${VAR:?message}`: compose refuses to start without it (deploy/.env or the shell).
    assert re.fullmatch(r"\$\{WEIBAO_JWT_SECRET:\?[^}]+\}", env["WEIBAO_JWT_SECRET"]), env["WEIBAO_JWT_SECRET"]
    assert env["WEIBAO_JWT_SECRET_PREVIOUS"].startswith("${WEIBAO_JWT_SECRET_PREVIOUS")


def test_kubernetes_gives_every_gateway_replica_the_secret_from_a_secret() -> None:
    container, _ = gateway_deployment()
    env = env_of(container)
    assert env["WEIBAO_JWT_SECRET"] == {"name": "WEIBAO_JWT_SECRET",
                                        "valueFrom": {"secretKeyRef": {"name": "weibao-jwt", "key": "current"}}}
    assert env["WEIBAO_JWT_SECRET_PREVIOUS"]["valueFrom"]["secretKeyRef"]["name"] == "weibao-jwt"
    example = [d for d in yaml.safe_load_all((DEPLOY / "k8s" / "secret.example.yaml").read_text()) if d]
    assert any(d["kind"] == "Secret" and d["metadata"]["name"] == "weibao-jwt" for d in example)


def test_compose_trusts_the_proxy_and_only_the_proxy_reaches_the_gateway() -> None:
    services = compose()["services"]
    gateway, proxy = services["gateway"], services["proxy"]
    assert true(gateway["environment"]["WEIBAO_TRUST_PROXY"])
    assert "ports" not in gateway  # published, anyone could spoof the headers it trusts
    assert proxy["ports"] == ["127.0.0.1:8000:8080"]
    mounted = {mount.split(":")[0]: mount.split(":")[1] for mount in proxy["volumes"]}
    assert mounted["./proxy/nginx.conf"] == "/etc/nginx/conf.d/default.conf"
    text = (DEPLOY / "proxy" / "nginx.conf").read_text()
    # The proxy replaces what a client wrote with what it saw itself.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in text
    assert "proxy_pass http://gateway:8000;" in text


def test_kubernetes_trusts_the_ingress_and_only_the_ingress_reaches_the_gateway() -> None:
    container, documents = gateway_deployment()
    assert true(env_of(container)["WEIBAO_TRUST_PROXY"]["value"])
    kinds = {d["kind"]: d for d in documents}
    backend = kinds["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == kinds["Service"]["metadata"]["name"]
    policy = kinds["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "gateway"}
    assert policy["policyTypes"] == ["Ingress"]
    sources = [source for rule in policy["ingress"] for source in rule["from"]]
    assert sources and all("namespaceSelector" in source for source in sources)


def test_nothing_else_trusts_a_proxy() -> None:
    """The services have no HTTP, and the gateway trusts the headers only where wired."""
    for name, service in compose()["services"].items():
        if name != "gateway":
            assert "WEIBAO_TRUST_PROXY" not in (service.get("environment") or {}), name
    for path in (DEPLOY / "k8s").glob("*.yaml"):
        if path.name != "gateway.yaml":
            assert "WEIBAO_TRUST_PROXY" not in path.read_text(), path.name

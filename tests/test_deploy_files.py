"""The deployment files parse, and every Weibao process in them is given its own NATS
identity and the CA, and each signer its own signing key (DESIGN.md, "Trust"): nothing
but the file syntax is checked here; tests/test_nats_cluster_conf.py runs the broker's
configuration for real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no stubs in the dev set; only safe_load is used

DEPLOY = Path(__file__).parent.parent / "deploy"
ROLES = {"contracts": "contracts", "dispatch": "dispatch", "billing": "billing", "gateway": "gateway",
         "streams-setup": "setup"}
SIGNERS = ("contracts", "dispatch", "billing", "gateway")


def test_compose_gives_each_process_its_own_seed() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    for name, role in ROLES.items():
        secrets = services[name]["secrets"]
        assert {"source": f"nats-{role}", "target": "nats-seed"} in secrets and "nats-ca" in secrets
        assert services[name]["environment"]["NATS_URL"].startswith("tls://")
    assert set(compose["secrets"]) == {f"nats-{role}" for role in ROLES.values()} | {"nats-ca"}
    for name in SIGNERS:  # its own signing key only, and the trusted public keys
        keys = [mount.split(":")[1] for mount in services[name]["volumes"]]
        assert keys == [f"/etc/weibao/keys/signing/{name}.key", "/etc/weibao/keys/signing/trusted.json"]
        assert services[name]["environment"]["WEIBAO_KEYS"] == "/etc/weibao/keys"


@pytest.mark.parametrize("path", sorted((DEPLOY / "k8s").glob("*.yaml")), ids=lambda p: p.name)
def test_kubernetes_manifests_parse(path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert documents and all("kind" in d for d in documents)
    name = path.stem
    if name in ROLES:
        pod: dict[str, Any] = documents[0]["spec"]["template"]["spec"]
        secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert secrets == {"nats-seed": f"weibao-nats-{ROLES[name]}", "nats-ca": "weibao-nats-ca"}
        if name in SIGNERS:  # its own signing key and the trusted public keys, nothing more
            sources = next(v["projected"]["sources"] for v in pod["volumes"] if v["name"] == "signing-keys")
            assert [s["secret"]["name"] for s in sources if "secret" in s] == [f"weibao-signing-{name}"]
            assert [s["configMap"]["name"] for s in sources if "configMap" in s] == ["weibao-trusted-keys"]

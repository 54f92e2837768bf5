"""The deployment files parse, and every Weibao process in them is given its own NATS
identity and the CA, and each signer its own signing key (DESIGN.md, "Trust"): nothing
but the file syntax is checked here; tests/test_nats_cluster_conf.py runs the broker's
configuration for real."""

from __future__ import annotations

import shutil
import subprocess
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


def _secrets_named(pod: dict[str, Any]) -> set[str]:
    """Every Secret a pod spec mounts or reads into its environment."""
    found = set()
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            found.add(volume["secret"]["secretName"])
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                found.add(source["secret"]["name"])
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        for variable in container.get("env", []):
            reference = variable.get("valueFrom", {}).get("secretKeyRef")
            if reference:
                found.add(reference["name"])
        found |= {e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e}
    return found


def test_kustomize_renders_and_each_process_gets_its_secrets() -> None:
    """What `kubectl apply -k` would send (DESIGN.md, "Trust"; issue 11: "their files
    must at least render"): each process its NATS identity and the CA, each signer its
    signing key, the gateway its JWT secret."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH: the manifests are only parsed (test_kubernetes_manifests_parse)")
    rendered = subprocess.run([kubectl, "kustomize", str(DEPLOY / "k8s")], capture_output=True, text=True,
                              timeout=120, check=False)
    assert rendered.returncode == 0, rendered.stderr
    objects = [d for d in yaml.safe_load_all(rendered.stdout) if d is not None]
    assert objects and all("kind" in d and "name" in d.get("metadata", {}) for d in objects)
    pods = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in objects
            if d["kind"] in ("Deployment", "Job", "StatefulSet")}
    for name, role in ROLES.items():
        secrets = _secrets_named(pods[f"weibao-{name}"])
        assert {f"weibao-nats-{role}", "weibao-nats-ca"} <= secrets, (name, secrets)
        # Least privilege: no other process's NATS identity or signing key.
        assert {s for s in secrets if s.startswith("weibao-nats-")} == {f"weibao-nats-{role}", "weibao-nats-ca"}
        signing = {s for s in secrets if s.startswith("weibao-signing-")}
        assert signing == ({f"weibao-signing-{name}"} if name in SIGNERS else set()), (name, signing)
    assert "weibao-jwt" in _secrets_named(pods["weibao-gateway"])

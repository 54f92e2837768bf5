"""A 3-node JetStream cluster on loopback, from deploy/nats/nats-cluster.conf as shipped
(only its paths, ports and route hosts moved): client TLS, mutual-TLS routes, the nkey
users of an auth.conf. Nodes can be killed and started again one by one, keeping their
data, as a crashed machine comes back."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from weibao.runtime.natsd import free_port, server_binary

CONF = Path(__file__).parent.parent / "deploy" / "nats" / "nats-cluster.conf"
OPENSSL = shutil.which("openssl")


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run([str(OPENSSL), *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder: Path) -> None:
    """A CA and one certificate for 127.0.0.1/localhost, for serving and for routes."""
    folder.mkdir()
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=test-ca",
            cwd=folder)
    openssl("req", *curve, "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=localhost", cwd=folder)
    (folder / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                    "extendedKeyUsage=serverAuth,clientAuth\n")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "tls.crt", "-days", "1", "-extfile", "ext.cnf", cwd=folder)


class Cluster:
    """Nodes n0, n1, n2 under `root`; `auth` is the text of their auth.conf."""

    SIZE = 3

    def __init__(self, root: Path, auth: str) -> None:
        self.root = root
        self.tls = root / "tls"
        self.auth = auth
        self.ports = [(free_port(), free_port(), free_port()) for _ in range(self.SIZE)]  # client, route, http
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * self.SIZE
        make_certificates(self.tls)

    def node_conf(self, index: int) -> Path:
        """The shipped file with only its paths, ports and route hosts moved."""
        node = self.root / f"node{index}"
        path = node / "nats.conf"
        if path.exists():
            return path
        client, route, http = self.ports[index]
        text = CONF.read_text()
        routes = "\n".join(f"    nats-route://127.0.0.1:{r}" for _, r, _ in self.ports)
        for old, new in (("/etc/nats/tls/", f"{self.tls}/"), ('"/data/jetstream"', f'"{self.root / f"js{index}"}"'),
                         ("0.0.0.0:4222", f"127.0.0.1:{client}"), ("0.0.0.0:8222", f"127.0.0.1:{http}"),
                         ("0.0.0.0:6222", f"127.0.0.1:{route}"), ("max_file_store: 50GB", "max_file_store: 1GB")):
            assert old in text, old
            text = text.replace(old, new)
        start = text.index("routes: [")
        text = text[:start] + "routes: [\n" + routes + "\n  ]" + text[text.index("]", start) + 1:]
        node.mkdir()
        (node / "auth.conf").write_text(self.auth)  # `include "auth.conf"`: beside the file
        path.write_text(text)
        return path

    def name(self, index: int) -> str:
        return f"n{index}"

    def index(self, name: str) -> int:
        return int(name.removeprefix("n"))

    def start(self, *indexes: int) -> None:
        """Start the given nodes (all when none is named), each on its own data."""
        for index in indexes or range(self.SIZE):
            conf = self.node_conf(index)
            log = open(conf.parent / "nats.log", "ab")  # noqa: SIM115 - the process holds it
            self.processes[index] = subprocess.Popen([str(server_binary()), "-c", str(conf)], stdout=log,
                                                     stderr=subprocess.STDOUT,
                                                     env={"NATS_SERVER_NAME": self.name(index)})
            log.close()

    def kill(self, *indexes: int) -> None:
        """SIGKILL: a node dies as a machine does (not SIGTERM: the file's lame-duck mode
        would take 30 s)."""
        for index in indexes or range(self.SIZE):
            process = self.processes[index]
            if process is not None:
                process.kill()
                process.wait()
                self.processes[index] = None

    def running(self) -> list[int]:
        return [i for i, p in enumerate(self.processes) if p is not None and p.poll() is None]

    def url(self, index: int = 0) -> str:
        return f"tls://127.0.0.1:{self.ports[index][0]}"

    def urls(self) -> str:
        """Every node, as NATS_URL lists a cluster's nodes."""
        return ",".join(self.url(i) for i in range(self.SIZE))

    def jsz(self, index: int, query: str = "") -> dict[str, Any]:
        """The node's JetStream monitoring page ({} while it does not answer)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[index][2]}/jsz{query}", timeout=1) as answer:
                found: dict[str, Any] = json.loads(answer.read())
                return found
        except OSError:
            return {}

    def meta_leader(self) -> bool:
        """The cluster has formed: all nodes known and a meta leader elected."""
        for index in self.running():
            meta = self.jsz(index).get("meta_cluster", {})
            if meta.get("leader") and meta.get("cluster_size") == self.SIZE:
                return True
        return False

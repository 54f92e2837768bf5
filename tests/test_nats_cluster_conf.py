"""deploy/nats/nats-cluster.conf works as shipped: three nodes from the file itself (only
its paths and ports moved into tmp_path and loopback), client TLS, mutual-TLS routes and
the nkey users of `weibao keys nats`; streams at R3 by the setup identity."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.errors import TimeoutError as NatsTimeout

from tests.helpers import eventually
from weibao.runtime.cli import keys_command
from weibao.runtime.natsd import free_port, server_binary
from weibao.shared.service import connect
from weibao.shared.streams import setup_streams

CONF = Path(__file__).parent.parent / "deploy" / "nats" / "nats-cluster.conf"
OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl CLI to make a test CA")


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
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tls = root / "tls"
        self.keys = root / "keys"
        self.ports = [(free_port(), free_port(), free_port()) for _ in range(3)]  # client, route, http
        self.processes: list[subprocess.Popen[bytes]] = []

    def node_conf(self, index: int) -> Path:
        """The shipped file with only its paths, ports and route hosts moved."""
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
        node = self.root / f"node{index}"
        node.mkdir()
        shutil.copy(self.keys / "auth.conf", node / "auth.conf")  # `include "auth.conf"`: beside the file
        path = node / "nats.conf"
        path.write_text(text)
        return path

    def start(self) -> None:
        for index in range(3):
            conf = self.node_conf(index)
            log = open(conf.parent / "nats.log", "ab")  # noqa: SIM115 - the process holds it
            self.processes.append(subprocess.Popen([str(server_binary()), "-c", str(conf)], stdout=log,
                                                   stderr=subprocess.STDOUT, env={"NATS_SERVER_NAME": f"n{index}"}))
            log.close()

    def stop(self) -> None:
        for process in self.processes:
            process.kill()  # not SIGTERM: the file's lame-duck mode would take 30 s
            process.wait()

    def url(self, index: int = 0) -> str:
        return f"tls://127.0.0.1:{self.ports[index][0]}"

    def meta_leader(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[0][2]}/jsz", timeout=1) as response:
                meta = json.loads(response.read()).get("meta_cluster", {})
        except OSError:
            return False
        return bool(meta.get("leader")) and meta.get("cluster_size") == 3


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    made = Cluster(tmp_path)
    make_certificates(made.tls)
    assert keys_command(made.keys, None, None) == 0
    monkeypatch.setenv("WEIBAO_NATS_CA", str(made.tls / "ca.crt"))
    made.start()
    yield made
    made.stop()


@pytest.fixture
async def formed(cluster: Cluster) -> Cluster:
    async def ready() -> bool:
        return all(p.poll() is None for p in cluster.processes) and cluster.meta_leader()

    await eventually(ready, timeout=30)
    return cluster


async def test_the_cluster_conf_admits_only_its_identities_over_tls(formed: Cluster) -> None:
    keys = formed.keys
    setup = await connect(formed.url(), "setup", seed=str(keys / "setup.nk"), max_reconnect_attempts=3)
    try:
        async def created() -> bool:  # the meta leader may still be settling its peers
            try:
                await setup_streams(setup.jetstream(timeout=3), replicas=3)
            except Exception:
                return False
            return True

        await eventually(created, timeout=20)
        assert (await setup.jetstream().stream_info("DISPATCH")).config.num_replicas == 3
    finally:
        await setup.close()

    with pytest.raises((nats.errors.Error, OSError)):  # no credentials, over TLS
        await nats.connect(formed.url(), connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0,
                           tls=ssl.create_default_context(cafile=str(formed.tls / "ca.crt")))
    with pytest.raises((nats.errors.Error, OSError)):  # the right key, but in plain text
        await nats.connect(f"nats://127.0.0.1:{formed.ports[0][0]}", nkeys_seed=str(keys / "dispatch.nk"),
                           connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0)

    dispatch = await connect(formed.url(1), "dispatch", seed=str(keys / "dispatch.nk"), max_reconnect_attempts=3)
    try:
        js = dispatch.jetstream(timeout=1)
        with pytest.raises(NatsTimeout):
            await js.publish("billing.invoice.issued", b"{}")
        ack = await js.publish("dispatch.probe", b"{}", timeout=5)
        assert ack.stream == "DISPATCH" and ack.seq == 1
    finally:
        await dispatch.close()

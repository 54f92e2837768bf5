"""deploy/nats/nats-cluster.conf works as shipped: three nodes from the file itself (only
its paths and ports moved into tmp_path and loopback), client TLS, mutual-TLS routes and
the nkey users of `weibao keys nats`; streams at R3 by the setup identity."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.errors import TimeoutError as NatsTimeout

from tests.cluster import OPENSSL, Cluster
from tests.helpers import eventually
from weibao.runtime.cli import keys_command
from weibao.shared.service import connect
from weibao.shared.streams import setup_streams

pytestmark = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl CLI to make a test CA")


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    keys = tmp_path / "keys"
    assert keys_command(keys, None, None) == 0
    made = Cluster(tmp_path, (keys / "auth.conf").read_text())
    monkeypatch.setenv("WEIBAO_NATS_CA", str(made.tls / "ca.crt"))
    made.start()
    yield made
    made.kill()


@pytest.fixture
async def formed(cluster: Cluster) -> Cluster:
    async def ready() -> bool:
        return len(cluster.running()) == cluster.SIZE and cluster.meta_leader()

    await eventually(ready, timeout=30)
    return cluster


async def test_the_cluster_conf_admits_only_its_identities_over_tls(formed: Cluster) -> None:
    keys = formed.root / "keys"
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

"""Browser tests: Playwright drives Debian's Chromium (`/usr/bin/chromium`, or
WEIBAO_CHROMIUM) through its executable path, headless; never a downloaded browser.
Without that Chromium the tests skip, so `make test` passes on a machine without it
(unless WEIBAO_BROWSER_TESTS=required, as CI sets: then they fail).

One real system serves every test of the package: a nats-server, the contracts,
dispatch and billing services in-process, and the gateway under uvicorn, all on one
event loop in a background thread; the tests drive it through the browser and, for
what they set up, through the gateway's HTTP API.

Clocks: the real one, for the services and the browsers alike (WEIBAO_NOW is unset):
a phone's device_time must not be ahead of the server's (D5), and the auditor's "as of"
needs events recorded at different moments. The seed's agreements went live two months
ago (the free first year, C1) and its technicians work around the clock, so D4 finds
them eligible at any hour."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.browser.world import PASSWORD, Api, seed
from tests.conftest import authenticated
from tests.helpers import connect_harness
from weibao.runtime.natsd import NatsServer, free_port

CHROMIUM = Path(os.environ.get("WEIBAO_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SERVICES = ("contracts", "dispatch", "billing")
SECRET = "browser-tests-signing-secret-32-bytes-or-more"


def _without(reason: str) -> None:
    """Skip; but where the browser tests are required (CI sets WEIBAO_BROWSER_TESTS=required), fail."""
    if os.environ.get("WEIBAO_BROWSER_TESTS") == "required":
        pytest.fail(f"browser tests are required here: {reason}")
    pytest.skip(reason)


def _playwright() -> Any:
    if not CHROMIUM.exists():
        _without(f"browser tests need Chromium at {CHROMIUM} (Debian's chromium package, or set WEIBAO_CHROMIUM)")
    try:
        from playwright import sync_api
    except ImportError:  # pragma: no cover - the dev extra installs it
        _without("browser tests need the playwright package (pip install -e '.[dev]')")
    return sync_api


@dataclass
class System:
    """nats-server + three services + the gateway, on one loop in a thread of its own."""

    root: Path
    port: int = field(default_factory=free_port)
    nats: NatsServer | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    failure: BaseException | None = None
    loop: asyncio.AbstractEventLoop | None = None
    halt: asyncio.Event | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.nats = NatsServer(data_dir=self.root / "nats", authorization=authenticated())
        self.nats.start()
        self.thread = threading.Thread(target=self._run, name="weibao-system", daemon=True)
        self.thread.start()
        if not self.ready.wait(90) or self.failure is not None:
            raise RuntimeError("the system did not start") from self.failure

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported to the test thread through `failure`
            self.failure = error
            self.ready.set()

    async def _main(self) -> None:
        import uvicorn

        from tests.helpers import services_answer
        from weibao.billing.service import spec as billing_spec
        from weibao.contracts.service import spec as contracts_spec
        from weibao.dispatch.service import spec as dispatch_spec
        from weibao.gateway.app import create_app
        from weibao.shared.service import Settings, serve
        from weibao.shared.streams import setup_streams

        assert self.nats is not None
        self.loop = asyncio.get_running_loop()
        self.halt = asyncio.Event()
        nc = await connect_harness(self.nats.url)
        await setup_streams(nc.jetstream())
        stop = asyncio.Event()
        specs = {"contracts": contracts_spec, "dispatch": dispatch_spec, "billing": billing_spec}
        services = [asyncio.create_task(serve(spec, Settings(self.nats.url, f"sqlite:///{self.root / name}.db"), stop))
                    for name, spec in specs.items()]
        await services_answer(nc, *SERVICES)
        app = create_app(self.nats.url, users_path=self.root / "users.json", secret=SECRET)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                               timeout_graceful_shutdown=2, lifespan="on"))
        gateway = asyncio.create_task(server.serve())
        while not server.started:
            if gateway.done():
                await gateway  # raises what stopped it
            await asyncio.sleep(0.05)
        self.ready.set()
        await self.halt.wait()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(gateway, 10)
        stop.set()
        await asyncio.gather(*services, return_exceptions=True)
        await nc.close()

    def stop(self) -> None:
        if self.loop is not None and self.halt is not None:
            self.loop.call_soon_threadsafe(self.halt.set)
        if self.thread is not None:
            self.thread.join(30)
        if self.nats is not None:
            self.nats.stop(kill=True)


@pytest.fixture(scope="package")
def sync_api() -> Any:
    return _playwright()


@pytest.fixture(scope="package")
def system(sync_api: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    root = tmp_path_factory.mktemp("browser-system")
    from tests.browser.world import write_users

    write_users(root / "users.json")
    with pytest.MonkeyPatch.context() as env:
        env.delenv("WEIBAO_NOW", raising=False)
        env.delenv("WEIBAO_TODAY", raising=False)
        env.setenv("WEIBAO_ASSESS_INTERVAL", "3600")
        env.setenv("WEIBAO_TICK_INTERVAL", "1")
        running = System(root)
        try:
            running.start()
            seed(running.url)
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="package")
def browser(sync_api: Any, system: System) -> Iterator[Any]:
    sync_api.expect.set_options(timeout=20_000)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def new_context(browser: Any, system: System) -> Iterator[Callable[..., Any]]:
    """Browser contexts (one per user, like separate devices), in China's time zone."""
    opened: list[Any] = []

    def make(**options: Any) -> Any:
        settings: dict[str, Any] = {"base_url": system.url, "locale": "zh-CN", "timezone_id": "Asia/Shanghai",
                                    "viewport": {"width": 1440, "height": 900}, "accept_downloads": True}
        settings.update(options)
        context = browser.new_context(**settings)
        context.set_default_timeout(20_000)
        opened.append(context)
        return context

    yield make
    for context in opened:
        with contextlib.suppress(Exception):
            context.close()


@pytest.fixture
def api(system: System) -> Callable[[str], Api]:
    """The gateway's API as a user: api("dispatcher").post(...)."""
    clients: dict[str, Api] = {}

    def as_user(username: str) -> Api:
        if username not in clients:
            clients[username] = Api(system.url, username, PASSWORD)
        return clients[username]

    return as_user


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def sign_in(page: Any, username: str, password: str = PASSWORD) -> None:
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("login").wait_for(state="detached")

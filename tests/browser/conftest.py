"""Browser tests: the portal served by uvicorn on loopback, driven in real Chromium (Debian's ``chromium``
through Playwright), with a real OIDC provider and a real SMTP server on loopback. They fail, never skip,
when the browser is missing (`.ci/run` installs it)."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from tests.conftest import postgres_url
from tests.identity_helpers import Sink, free_port
from tests.portal_helpers import build_world

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]


def chromium_path() -> str:
    found = os.environ.get("VPDC_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("no Chromium: install Debian's `chromium` (apt-get install -y chromium; .ci/run does) or set "
                    "VPDC_CHROMIUM to a Chromium binary. Browser tests never skip.")
    return found


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


class Portal:
    def __init__(self, world, url: str, sink: Sink, issuer: str):
        self.world, self.url, self.sink, self.issuer = world, url, sink, issuer


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    import uvicorn
    from oidc_provider_mock import run_server_in_thread

    from governance.identity.mail import Mailer
    from governance.identity.oidc import OIDCConfig
    from vpdc.portal import PortalConfig, create_app

    with run_server_in_thread(port=free_port(), require_nonce=True) as idp, Sink() as sink:
        issuer = f"http://localhost:{idp.server_port}"
        world = build_world(Path(tmp_path_factory.mktemp("browser-portal")), oidc_issuer=issuer,
                            registry_url=postgres_url("VPDC_TEST_PORTAL_REGISTRY_URL"))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        config = PortalConfig(world.home.root, base_url=url, registry_url=os.environ.get("VPDC_TEST_PORTAL_REGISTRY_URL"),
                              oidc=OIDCConfig(issuer, "vpdc-portal", "portal-secret", url + "/auth/oidc/callback"),
                              oidc_label="Hospital B", mailer=Mailer("127.0.0.1", sink.port), clock=world.clock)
        server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning",
                                               access_log=False))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        started = threading.Event()
        for _ in range(600):  # wait for the server to listen (bounded)
            if server.started:
                break
            started.wait(0.05)
        assert server.started, "the portal did not start"
        yield Portal(world, url, sink, issuer)
        server.should_exit = True
        thread.join(timeout=10)

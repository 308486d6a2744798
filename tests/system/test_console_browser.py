"""The console in real headless Chromium, against a real API process, worker and scheduler:
sign in, create a config from the form (a 422 shown beside its field first), start it, see
its next run, run it now and see the run appear without a reload, pause it, sign out; what
each role sees (viewer: no actions; operator: run and schedule, no edit); API tokens (the
secret shown once, working as a bearer, refused once revoked); a config's changes and the
audit log; notification channels (created, tested, refused deletion while in use), alert
settings in the form, a note on a pause, a failed run's streak and its delivery on the
Deliveries page; an operator cancelling a run started from the config page."""

import os
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import NotificationDelivery, Role
from tests.support import processes
from tests.support.api_process import ApiServer, free_port, start_api
from tests.support.auth import bearer, bearer_for, create_user, unique_username
from tests.support.browser import ConsoleErrors, browser
from tests.support.configs import CONFIGS, sleep_config
from tests.support.http_sink import HttpSink
from tests.support.worker_process import Worker

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

__all__ = ["browser"]  # the module-scoped Chromium fixture

ROOT = Path(__file__).resolve().parents[2]
# The tracked screenshot in the docs changes only when asked for (UPDATE_SCREENSHOTS=1).
SCREENSHOT = (
    ROOT / "docs" / "screenshots" / "config-page.png"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else Path(os.environ.get("TEST_LOG_DIR", tempfile.gettempdir())) / "taskhub-config-page.png"
)
ADMIN = (os.environ["FIRST_SUPERUSER"], os.environ["FIRST_SUPERUSER_PASSWORD"])
TOKENS_KEY = "taskhub.console.tokens"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
RUN_TIMEOUT_MS = 20_000
DASH = "\N{EN DASH}"  # as in the pagers' "1-20 of 57"
expect.set_options(timeout=10_000)  # the machine may be busy: poll longer, never sleep


@pytest.fixture(scope="module")
async def api_server() -> AsyncIterator[ApiServer]:
    server = await start_api()
    yield server
    processes.stop(server.process)


@pytest.fixture(scope="module")
async def worker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worker]:
    process = Worker(tmp_path_factory.mktemp("console-worker") / "worker.log")
    await process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def scheduler() -> Iterator[None]:
    process = processes.start_scheduler("console-scheduler")
    yield
    processes.stop(process)


@pytest.fixture
async def context(browser: Browser, api_server: ApiServer) -> AsyncIterator[BrowserContext]:
    # Berlin time in the browser: the screenshot shows a cron time of 02:00 Europe/Berlin as
    # 02:00 local time.
    context = await browser.new_context(
        viewport=DESKTOP, base_url=api_server.base_url, timezone_id="Europe/Berlin", locale="en-GB"
    )
    yield context
    await context.close()


async def sign_in(page: Page, username: str, password: str) -> None:
    await page.goto("/console/")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("#signin-form button[type=submit]")


def fits_width(page: Page) -> object:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_operator_session_from_sign_in_to_sign_out(
    context: BrowserContext, api_server: ApiServer, worker: Worker, scheduler: None
) -> None:
    page = await context.new_page()
    errors = ConsoleErrors()
    errors.watch(page)

    # Sign in; a reload stays signed in (tokens kept in localStorage).
    await sign_in(page, *ADMIN)
    await expect(page.get_by_role("heading", name="Task configs")).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("heading", name="Task configs")).to_be_visible()
    await expect(page.locator("#whoami")).to_have_text("admin")
    await expect(page.locator("#role")).to_have_text("admin")

    # The form: built from demo.sleep's schema; an invalid value gets the API's 422 beside it.
    await page.click("[data-nav=new]")
    form = page.locator("#config-form")
    name = f"nightly nap {uuid.uuid4().hex[:6]}"
    await form.locator("[name=name]").fill(name)
    await form.locator("[name=task_type]").select_option("demo.sleep")
    await form.locator("[name='parameters.seconds']").fill("-1")
    await form.locator("[name='parameters.message']").fill("hello from the console")
    await form.locator("[name=scheduler_type]").select_option("cron")
    # Half a day away: the scheduler does not fire it during the test, so the one run
    # listed below is the one started with Run now.
    hour = (datetime.now(ZoneInfo("Europe/Berlin")).hour + 12) % 24
    await form.locator("[name='schedule_config.cron_expression']").fill(f"0 {hour} * * *")
    await form.locator("[name='schedule_config.timezone']").fill("Europe/Berlin")
    await form.locator("button[type=submit]").click()
    seconds_error = form.locator("[data-field='parameters.seconds'] > .field-error")
    await expect(seconds_error).to_have_text(re.compile("greater than or equal to 0"))
    await expect(form.locator("[data-field=name] > .field-error")).to_be_hidden()

    await form.locator("[name='parameters.seconds']").fill("0.3")
    await form.locator("button[type=submit]").click()
    config_page = page.locator("#config-page")
    await expect(config_page.get_by_role("heading", name=name)).to_be_visible()
    await expect(page.locator("#schedule-words")).to_have_text(
        f"At {hour:02}:00, every day (Europe/Berlin)"
    )
    await expect(config_page.locator("h1 .badge")).to_have_text("inactive")

    # Start: active, with a next run in local time and "in N hr/min".
    await page.click("[data-action=start]")
    await expect(config_page.locator("h1 .badge")).to_have_text("active")
    await expect(page.locator("#next-run small")).to_have_text(re.compile(r"^in 1[0-3] hr"))

    # Run now: the run shows up by polling, without a reload of the page.
    await page.evaluate("window.sameDocument = true")
    await page.click("[data-action=run]")
    rows = page.locator("#executions tbody tr")
    await expect(rows).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    await expect(rows.first).to_contain_text("succeeded")
    await expect(rows.first).to_contain_text("manual")
    await expect(page.locator("#duration-chart circle.dot-ok")).to_have_count(1)
    await expect(page.locator("#history")).to_contain_text("succeeded")
    assert await page.evaluate("window.sameDocument") is True

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000  # a rendered page, not an empty image

    # Pause: the actions follow the status; no next run while paused.
    await page.click("[data-action=pause]")
    await expect(config_page.locator("h1 .badge")).to_have_text("paused")
    await expect(page.locator("[data-action=resume]")).to_be_visible()
    await expect(page.locator("[data-action=start]")).to_have_count(0)
    await expect(page.locator("#next-run")).to_have_text("—")

    # The executions filter asks the API for failed runs only: there are none.
    await page.select_option("#executions-filter", "false")
    await expect(page.locator("#executions")).to_contain_text("No runs match.")
    await page.select_option("#executions-filter", "")
    await expect(rows).to_have_count(1)

    # Edit: the form comes filled in; a change is saved with PATCH.
    await page.get_by_role("link", name="Edit", exact=True).click()
    await expect(form.locator("[name='parameters.message']")).to_have_value(
        "hello from the console"
    )
    await expect(form.locator("[name='schedule_config.cron_expression']")).to_have_value(
        f"0 {hour} * * *"
    )
    await form.locator("[name=priority]").fill("8")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#priority")).to_have_text("8")
    await expect(config_page.locator("h1 .badge")).to_have_text("paused")

    # Phone width: nothing wider than the screen, on the config page and the list.
    await page.set_viewport_size(PHONE)
    assert await fits_width(page)
    await page.click("[data-nav=configs]")
    await page.fill("#filter-search", name)
    found = page.locator("#config-results tbody tr")
    await expect(found).to_have_count(1)
    await expect(found).to_contain_text("paused")
    await expect(found).to_contain_text("succeeded")
    await expect(found).to_contain_text("100%")
    assert await fits_width(page)
    await page.fill("#filter-search", "no config is called this")
    await expect(page.locator("#config-results")).to_contain_text("No task configs match.")
    await page.set_viewport_size(DESKTOP)

    # The system page: reachability and counts, from /tasks/status and /health.
    await page.click("[data-nav=system]")
    system = page.locator("#system")
    await expect(system).to_contain_text("Active schedules")
    await expect(system.locator(".badge-ok")).to_have_count(6)  # 3 checks, twice
    await expect(page.locator("#runs-in-flight")).to_have_text(re.compile(r"^\d+$"))

    # Sign out revokes the refresh token at the API and forgets the tokens here.
    tokens = await page.evaluate(f"JSON.parse(localStorage.getItem('{TOKENS_KEY}'))")
    await page.click("#sign-out")
    await expect(page.locator("#signin-form")).to_be_visible()
    assert await page.evaluate(f"localStorage.getItem('{TOKENS_KEY}')") is None
    async with httpx.AsyncClient(base_url=api_server.base_url) as http:
        reused = await http.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
    assert reused.status_code == 401

    # Chromium reports every 4xx response as a console error: the one 422 provoked above is
    # the only error allowed, beside the live preview's 422s for a cron expression half typed.
    messages = [m for m in errors.messages if not m.endswith("/api/v1/tasks/schedules/preview")]
    assert len(messages) == 1, errors.messages
    assert "status of 422" in messages[0]
    assert messages[0].endswith("/api/v1/tasks/configs")
    log = api_server.log()
    assert tokens["access_token"] not in log
    assert tokens["refresh_token"] not in log


@pytest.fixture
async def admin_api(
    api_server: ApiServer, superuser_headers: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """The real API process, called as the first superuser (an admin)."""
    async with httpx.AsyncClient(base_url=api_server.base_url, headers=superuser_headers) as http:
        yield http


async def new_config(http: httpx.AsyncClient, **overrides: object) -> dict:
    response = await http.post(CONFIGS, json=sleep_config(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


async def user_with_role(session: AsyncSession, role: Role) -> tuple[str, int]:
    username = unique_username(role)
    user = await create_user(session, username=username, role=role, password=f"{role}-password")
    return username, user.id


async def test_a_viewer_sees_the_role_and_no_actions(
    context: BrowserContext, session: AsyncSession, admin_api: httpx.AsyncClient
) -> None:
    config = await new_config(admin_api)
    username, _ = await user_with_role(session, "viewer")
    page = await context.new_page()
    errors = ConsoleErrors()
    errors.watch(page)

    await sign_in(page, username, "viewer-password")
    await expect(page.get_by_role("heading", name="Task configs")).to_be_visible()
    await expect(page.locator("#whoami")).to_have_text(username)
    await expect(page.locator("#role")).to_have_text("viewer")
    await expect(page.locator("[data-nav=new]")).to_be_hidden()
    await expect(page.get_by_role("link", name="New config")).to_have_count(0)

    # A config: everything to read, no button to press.
    await page.goto(f"/console/#/configs/{config['id']}")
    config_page = page.locator("#config-page")
    await expect(config_page.get_by_role("heading", name=config["name"])).to_be_visible()
    await expect(page.locator("#changes")).to_contain_text("config.create")
    await expect(config_page.locator("[data-action]")).to_have_count(0)
    await expect(config_page.locator(".page-head").locator("button, .button")).to_have_count(0)
    await expect(config_page.get_by_role("link", name="Edit")).to_have_count(0)

    # The form is for admins: a viewer who types its address gets "Not allowed".
    await page.goto("/console/#/configs/new")
    await expect(page.locator("#not-allowed")).to_contain_text("needs the admin role")
    await expect(page.locator("#config-form")).to_have_count(0)

    # Tokens: a viewer's own only, of the viewer role at most.
    await page.click("[data-nav=tokens]")
    await expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    await expect(page.locator("#token-role option")).to_have_text(["viewer"])
    await expect(page.locator("#tokens-all")).to_have_count(0)

    # Channels and deliveries: to read; no form, no Send test, no Delete.
    await page.click("[data-nav=channels]")
    await expect(page.get_by_role("heading", name="Notification channels")).to_be_visible()
    await expect(page.locator("#channel-form")).to_have_count(0)
    await expect(page.locator("#channel-list [data-action]")).to_have_count(0)
    await page.click("[data-nav=deliveries]")
    await expect(page.get_by_role("heading", name="Alert deliveries")).to_be_visible()
    assert errors.messages == []


async def test_an_operator_runs_and_steers_but_does_not_edit(
    context: BrowserContext, session: AsyncSession, admin_api: httpx.AsyncClient
) -> None:
    config = await new_config(admin_api)
    username, user_id = await user_with_role(session, "operator")
    page = await context.new_page()
    errors = ConsoleErrors()
    errors.watch(page)

    await sign_in(page, username, "operator-password")
    await expect(page.locator("#role")).to_have_text("operator")
    await expect(page.locator("[data-nav=new]")).to_be_hidden()
    await page.goto(f"/console/#/configs/{config['id']}")
    config_page = page.locator("#config-page")
    await expect(config_page.locator("[data-action=run]")).to_be_visible()
    await expect(config_page.locator("[data-action=start]")).to_be_visible()
    await expect(config_page.locator("[data-action=edit]")).to_have_count(0)
    await expect(config_page.locator("[data-action=delete]")).to_have_count(0)

    # A schedule action works, and the config's changes name who took it.
    await page.click("[data-action=start]")
    await expect(config_page.locator("h1 .badge")).to_have_text("active")
    await expect(config_page.locator("[data-action=pause]")).to_be_visible()
    started = page.locator("#changes tr[data-audit-action='schedule.start']")
    await expect(started).to_contain_text(username)
    await expect(started).to_contain_text("schedule_status: active")

    # Demoted while signed in: the next action gets the API's 403, and the page follows the
    # new role (read again) without a reload.
    demoted = await admin_api.patch(f"/api/v1/users/{user_id}", json={"role": "viewer"})
    assert demoted.status_code == 200, demoted.text
    await page.click("[data-action=pause]")
    await expect(page.locator("#role-changed")).to_contain_text("Your role is now viewer")
    await expect(page.locator("#role")).to_have_text("viewer")
    await expect(config_page.locator("[data-action]")).to_have_count(0)
    await admin_api.post(f"{CONFIGS}/{config['id']}/actions/stop")
    assert len(errors.messages) == 1, errors.messages  # the 403, as Chromium reports it
    assert "status of 403" in errors.messages[0]


async def test_an_operator_cancels_a_run_started_from_the_page(
    context: BrowserContext, session: AsyncSession, admin_api: httpx.AsyncClient, worker: Worker
) -> None:
    config = await new_config(
        admin_api, scheduler_type="manual", schedule_config={}, parameters={"seconds": 30}
    )
    username, _ = await user_with_role(session, "operator")
    page = await context.new_page()
    errors = ConsoleErrors()
    errors.watch(page)
    await sign_in(page, username, "operator-password")
    await expect(page.locator("#role")).to_have_text("operator")
    await page.goto(f"/console/#/configs/{config['id']}")

    await page.click("[data-action=run]")
    running = page.locator("#runs-in-progress li[data-state=running]")
    await expect(running).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    await running.locator("[data-action=cancel]").click()
    await expect(page.locator("#flash")).to_contain_text("is being cancelled")
    rows = page.locator("#executions tbody tr")
    await expect(rows).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    await expect(rows.first).to_contain_text("failed")
    await expect(rows.first).to_contain_text(f"Cancelled by {username}")
    await expect(page.locator("#runs-in-progress li")).to_have_count(0)
    await expect(page.locator("#history")).to_contain_text("cancelled")
    assert errors.messages == []


async def test_the_config_page_and_the_audit_log_show_changes(
    context: BrowserContext, admin_api: httpx.AsyncClient
) -> None:
    config = await new_config(admin_api, priority=5)
    path = f"{CONFIGS}/{config['id']}"
    # 21 updates through the API: the config page shows the newest 10, the audit log pages.
    for priority in [*range(10), *range(10)][::-1]:
        response = await admin_api.patch(path, json={"priority": priority})
        assert response.status_code == 200, response.text
    response = await admin_api.patch(path, json={"priority": 7, "description": "now nightly"})
    assert response.status_code == 200, response.text
    page = await context.new_page()
    errors = ConsoleErrors()
    errors.watch(page)
    await sign_in(page, *ADMIN)
    await expect(page.get_by_role("heading", name="Task configs")).to_be_visible()

    # The config page: who, when, field: old → new, newest first.
    await page.goto(f"/console/#/configs/{config['id']}")
    changes = page.locator("#changes tbody tr")
    await expect(changes).to_have_count(10)
    newest = changes.first
    await expect(newest.locator("[data-field=priority]")).to_have_text("priority: 0 → 7")
    await expect(newest.locator("[data-field=description]")).to_have_text(
        "description: — → now nightly"
    )
    await expect(newest).to_contain_text("admin")
    await expect(newest).to_contain_text("config.update")
    await expect(page.locator("#changes .pager")).to_contain_text(f"1{DASH}10 of 22 changes")
    await page.locator("#changes .pager button", has_text="Next").click()
    await expect(page.locator("#changes .pager")).to_contain_text(f"11{DASH}20 of 22")
    await page.locator("#changes .pager button", has_text="Next").click()
    await expect(changes).to_have_count(2)
    await expect(changes.last).to_contain_text("config.create")

    # The audit log: newest first, filtered by action and actor, paged.
    await page.click("[data-nav=audit]")
    results = page.locator("#audit-results tbody tr")
    await expect(results.first).to_contain_text(config["name"])
    await expect(results.first).to_contain_text("priority: 0 → 7")
    await page.select_option("#audit-action", "config.create")
    # Polled: the rows of the unfiltered page are gone once the filtered page is drawn.
    await expect(
        page.locator("#audit-results tbody tr:not([data-audit-action='config.create'])")
    ).to_have_count(0)
    await expect(results.first).to_contain_text(config["name"])
    for action in await results.evaluate_all("rows => rows.map(row => row.dataset.auditAction)"):
        assert action == "config.create"
    await page.select_option("#audit-action", "config.update")
    await page.fill("#audit-actor", "admin")
    await expect(page).to_have_url(re.compile(r"#/audit\?action=config.update&actor=admin$"))
    await expect(results).to_have_count(20)
    await expect(page.locator("#audit-results .pager")).to_contain_text(f"1{DASH}20 of")
    await page.locator("#audit-results .pager button", has_text="Next").click()
    await expect(page.locator("#audit-results .pager")).to_contain_text(
        re.compile(rf"21{DASH}\d+ of")
    )
    await page.set_viewport_size(PHONE)
    assert await fits_width(page)
    await page.set_viewport_size(DESKTOP)
    await page.fill("#audit-actor", "nobody-did-this")
    await expect(page.locator("#audit-results")).to_contain_text("No audit entries match.")
    assert errors.messages == []


async def test_an_api_token_is_shown_once_works_and_is_refused_once_revoked(
    context: BrowserContext,
    api_server: ApiServer,
    session: AsyncSession,
    admin_api: httpx.AsyncClient,
) -> None:
    # Another user's token, which an admin sees with "All users".
    _, viewer_id = await user_with_role(session, "viewer")
    theirs = await admin_api.post(
        "/api/v1/tokens", json={"name": "their-token"}, headers=bearer_for(viewer_id)
    )
    assert theirs.status_code == 201, theirs.text
    await context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = await context.new_page()
    errors = ConsoleErrors()
    errors.watch(page)
    await sign_in(page, *ADMIN)
    await page.click("[data-nav=tokens]")

    name = f"ci-{uuid.uuid4().hex[:6]}"
    await page.fill("#token-name", name)
    await page.select_option("#token-role", "operator")
    await page.select_option("#token-expiry", "30")
    await page.click("#token-form button[type=submit]")
    shown = page.locator("#new-token")
    await expect(shown).to_contain_text("you will not see it again")
    secret = await page.locator("#new-token-secret").input_value()
    assert re.fullmatch(r"thk_[A-Za-z0-9_-]{40}", secret), secret
    await page.click("#new-token-copy")
    await expect(page.locator("#new-token-copied")).to_have_text("Copied to the clipboard.")
    assert await page.evaluate("navigator.clipboard.readText()") == secret
    row = page.locator("#token-list tbody tr", has_text=name)
    await expect(row).to_contain_text("operator")
    await expect(row).to_contain_text("active")
    assert secret not in await row.inner_text()  # the list shows its prefix only

    # It works as a bearer, with its own role (operator: no config creation).
    async with httpx.AsyncClient(base_url=api_server.base_url, headers=bearer(secret)) as http:
        assert (await http.get(CONFIGS)).status_code == 200
        create = await http.post(CONFIGS, json=sleep_config())
        assert create.status_code == 403
        assert "you have operator" in create.json()["error"]["message"]

        # Done: the secret is gone from the page, and a reload does not bring it back.
        await page.click("#new-token-done")
        await expect(shown).to_have_count(0)
        assert secret not in await page.content()
        await page.reload()
        await expect(row).to_contain_text("active")
        assert secret not in await page.content()
        await expect(page.locator("#token-list")).not_to_contain_text("their-token")
        await page.check("#tokens-all")
        their_row = page.locator("#token-list tbody tr", has_text="their-token").first
        await expect(their_row).to_contain_text("viewer-")
        await page.set_viewport_size(PHONE)
        assert await fits_width(page)
        await page.set_viewport_size(DESKTOP)

        # Revoke (after a confirm): the very next request with it is refused.
        page.once("dialog", lambda dialog: dialog.accept())
        await row.locator("[data-action=revoke]").click()
        await expect(row).to_contain_text("revoked")
        await expect(row.locator("[data-action=revoke]")).to_have_count(0)
        refused = await http.get(CONFIGS)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"]
    assert errors.messages == []
    assert secret not in api_server.log()


async def test_console_responses_carry_the_csp_in_the_browser(
    context: BrowserContext,
) -> None:
    page = await context.new_page()
    response = await page.goto("/console/")
    assert response is not None
    assert "script-src 'self'" in (await response.header_value("content-security-policy") or "")
    await expect(page.locator("#signin-form")).to_be_visible()


async def test_tokens_are_refreshed_before_the_access_token_expires(
    context: BrowserContext,
) -> None:
    page = await context.new_page()
    errors = ConsoleErrors()
    errors.watch(page)
    await page.clock.install()  # the page's timers and Date, moved by the test
    await sign_in(page, *ADMIN)
    await expect(page.get_by_role("heading", name="Task configs")).to_be_visible()
    read_tokens = f"JSON.parse(localStorage.getItem('{TOKENS_KEY}'))"
    before = await page.evaluate(read_tokens)

    # Access tokens live 15 minutes; the console refreshes a minute ahead of expiry.
    await page.clock.fast_forward("14:30")
    # (Polled from here: the page's CSP refuses the string evaluation wait_for_function uses.)
    after = await processes.eventually(
        lambda: page.evaluate(read_tokens),
        lambda tokens: tokens["access_token"] != before["access_token"],
    )
    assert after["refresh_token"] != before["refresh_token"]
    # Still signed in and working with the new pair.
    await page.click("[data-nav=system]")
    await expect(page.locator("#system")).to_contain_text("Active schedules")
    assert errors.messages == []


async def test_alerts_channels_a_note_and_deliveries(
    context: BrowserContext, admin_api: httpx.AsyncClient, worker: Worker
) -> None:
    sink = await HttpSink().start()
    config = await new_config(
        admin_api,
        schedule_config={"hours": 12},  # started below, never fired during the test
        parameters={"seconds": 0.1, "fail": True, "message": "boom"},
    )
    config_url = f"{CONFIGS}/{config['id']}"
    page = await context.new_page()
    errors = ConsoleErrors()
    errors.watch(page)
    await sign_in(page, *ADMIN)
    await page.click("[data-nav=channels]")
    await expect(page.get_by_role("heading", name="Notification channels")).to_be_visible()
    form = page.locator("#channel-form")

    # An e-mail channel needs SMTP_HOST on the server: the API's 422 shows at the kind.
    await form.locator("[name=name]").fill(f"mail-{uuid.uuid4().hex[:6]}")
    await form.locator("[name=kind]").select_option("email")
    await form.locator("[name='config.to']").fill("ops@example.com")
    await form.locator("button[type=submit]").click()
    await expect(form.locator("[data-field=kind] > .field-error")).to_have_text(
        "SMTP_HOST is not set"
    )

    # A webhook to the test's HTTP server: created, and its test is delivered (HTTP 200).
    hook = f"hook-{uuid.uuid4().hex[:6]}"
    await form.locator("[name=name]").fill(hook)
    await form.locator("[name=kind]").select_option("webhook")
    await form.locator("[name='config.url']").fill(sink.url("/hook"))
    await form.locator("[name='config.secret']").fill("s3cr3t")
    await form.locator("button[type=submit]").click()
    row = page.locator("#channel-list tbody tr", has_text=hook)
    await expect(row).to_contain_text("signed")
    await expect(form.locator("#channel-form-errors")).to_be_hidden()
    await row.locator("[data-action=test]").click()
    await expect(row.locator(".test-outcome")).to_contain_text("delivered")
    await expect(row.locator(".test-outcome")).to_contain_text("HTTP 200")
    assert sink.hits["/hook"] == 1

    # One to a closed port: its test says so, with the error; then it is deleted.
    dead = f"dead-{uuid.uuid4().hex[:6]}"
    await form.locator("[name=name]").fill(dead)
    await form.locator("[name='config.url']").fill(f"http://127.0.0.1:{free_port()}/x")
    await form.locator("button[type=submit]").click()
    dead_row = page.locator("#channel-list tbody tr", has_text=dead)
    await dead_row.locator("[data-action=test]").click()
    await expect(dead_row.locator(".test-outcome")).to_have_attribute("data-delivered", "false")
    await expect(dead_row.locator(".test-outcome")).to_contain_text("not delivered")
    page.once("dialog", lambda dialog: dialog.accept())
    await dead_row.locator("[data-action=delete]").click()
    await expect(dead_row).to_have_count(0)
    channels = (await admin_api.get("/api/v1/notifications/channels")).json()
    channel_id = next(c["id"] for c in channels if c["name"] == hook)

    # Alert settings in the form: `late` without its limit gets the API's 422 at the alerts;
    # then stored as given (read back through the API).
    await page.goto(f"/console/#/configs/{config['id']}/edit")
    config_form = page.locator("#config-form")
    await expect(config_form.locator("#alert-settings")).to_be_hidden()
    await config_form.locator("#field-alerts-enabled").check()
    await config_form.locator(f"[name='alerts.channel_ids'][value='{channel_id}']").check()
    await config_form.locator("[name='alerts.on'][value=late]").check()
    await config_form.locator("button[type=submit]").click()
    await expect(config_form.locator("[data-field=alerts] > .field-error")).to_contain_text(
        "needs late_after_seconds"
    )
    await config_form.locator("[name='alerts.late_after_seconds']").fill("600")
    await config_form.locator("[name='pause_after_failures']").fill("3")
    await config_form.locator("button[type=submit]").click()
    await expect(page.locator("#alerts-words")).to_contain_text(f"{hook} (webhook)")
    await expect(page.locator("#pause-after")).to_have_text(
        "after 3 failed scheduled runs in a row"
    )
    stored = (await admin_api.get(config_url)).json()
    assert stored["alerts"] == {
        "channel_ids": [channel_id],
        "on": ["failure", "recovery", "late"],
        "after_consecutive_failures": 1,
        "late_after_seconds": 600,
    }
    assert stored["pause_after_failures"] == 3

    # A channel in use cannot be deleted: the API's 409 says which config uses it.
    await page.click("[data-nav=channels]")
    page.once("dialog", lambda dialog: dialog.accept())
    await row.locator("[data-action=delete]").click()
    await expect(page.locator("#channels-flash")).to_contain_text(config["name"])
    await expect(row).to_have_count(1)

    # Pause with a note: the note is on the page, in the history, and in the API's read.
    await page.goto(f"/console/#/configs/{config['id']}")
    await page.click("[data-action=start]")
    await expect(page.locator("#config-page h1 .badge")).to_have_text("active")
    await page.fill("#action-note", "deploying the new database")
    await page.click("[data-action=pause]")
    await expect(page.locator("#config-page h1 .badge")).to_have_text("paused")
    await expect(page.locator("#schedule-note")).to_have_text("deploying the new database")
    await expect(page.locator("#history")).to_contain_text("note: deploying the new database")
    await expect(page.locator("#action-note")).to_have_value("")
    assert (await admin_api.get(config_url)).json()["schedule_note"] == (
        "deploying the new database"
    )

    # A failed run: the stats count the streak and show its error; the worker's notifier
    # posts a `failure` to the hook, and the Deliveries page lists it.
    await page.click("[data-action=run]")
    await expect(page.locator("#consecutive-failures")).to_have_text("1", timeout=RUN_TIMEOUT_MS)
    await expect(page.locator("#last-error")).to_contain_text("boom")
    await page.click("#config-deliveries")
    await expect(page).to_have_url(re.compile(rf"#/deliveries\?config_id={config['id']}$"))
    deliveries = page.locator("#delivery-results tbody tr")
    await expect(deliveries).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    await expect(deliveries.first).to_have_attribute("data-event", "failure")
    await expect(deliveries.first).to_have_attribute(
        "data-status", "delivered", timeout=RUN_TIMEOUT_MS
    )
    await expect(deliveries.first).to_contain_text(config["name"])
    await expect(deliveries.first).to_contain_text(hook)
    assert sink.hits["/hook"] == 2
    await page.select_option("#deliveries-status", "failed")
    await expect(page.locator("#delivery-results")).to_contain_text("No deliveries match.")
    await page.select_option("#deliveries-status", "")
    await page.select_option("#deliveries-channel_id", str(channel_id))
    await expect(page).to_have_url(re.compile(rf"channel_id={channel_id}"))
    await expect(deliveries).to_have_count(1)
    await page.set_viewport_size(PHONE)
    assert await fits_width(page)
    await page.set_viewport_size(DESKTOP)

    await admin_api.post(f"{config_url}/actions/stop")
    await admin_api.patch(config_url, json={"alerts": None})
    await sink.close()
    # Chromium reports the 4xx responses provoked above as console errors: those only.
    statuses = sorted(re.findall(r"status of (\d+)", " ".join(errors.messages)))
    assert len(errors.messages) == 3, errors.messages
    assert statuses == ["409", "422", "422"], errors.messages


async def test_the_deliveries_page_pages_newest_first(
    context: BrowserContext, session: AsyncSession, admin_api: httpx.AsyncClient
) -> None:
    # 23 finished deliveries (failed: the workers' notifier leaves them alone), written
    # straight into the API's database; their channel is gone (deleted channels read null).
    config = await new_config(admin_api)
    session.add_all(
        NotificationDelivery(
            event_id=f"failure:console-{config['id']}-{n}",
            event="failure",
            channel_id=None,
            config_id=config["id"],
            status="failed",
            attempts=3,
            last_status=500,
            last_error=f"HTTP 500 no. {n}",
            payload={"event": "failure", "config": {"id": config["id"], "name": config["name"]}},
        )
        for n in range(23)
    )
    await session.commit()
    page = await context.new_page()
    errors = ConsoleErrors()
    errors.watch(page)
    await sign_in(page, *ADMIN)
    await expect(page.get_by_role("heading", name="Task configs")).to_be_visible()
    await page.goto(f"/console/#/deliveries?config_id={config['id']}")
    rows = page.locator("#delivery-results tbody tr")
    await expect(rows).to_have_count(20)
    await expect(page.locator("#deliveries-config_id")).to_have_value(str(config["id"]))
    await expect(rows.first).to_contain_text("HTTP 500 no. 22")
    await expect(rows.first).to_contain_text("deleted channel")
    await expect(rows.first).to_contain_text(config["name"])
    await expect(page.locator("#delivery-results .pager")).to_contain_text(f"1{DASH}20 of 23")
    await page.locator("#delivery-results .pager button", has_text="Next").click()
    await expect(rows).to_have_count(3)
    await expect(rows.last).to_contain_text("HTTP 500 no. 0")
    await expect(page).to_have_url(re.compile(r"offset=20"))
    await page.select_option("#deliveries-status", "pending")
    await expect(page.locator("#delivery-results")).to_contain_text("No deliveries match.")
    assert errors.messages == []


async def test_the_form_previews_the_next_runs_and_the_config_page_lists_them(
    context: BrowserContext, api_server: ApiServer
) -> None:
    page = await context.new_page()
    errors = ConsoleErrors()
    errors.watch(page)
    await sign_in(page, *ADMIN)
    await page.click("[data-nav=new]")
    form = page.locator("#config-form")
    await form.locator("[name=name]").fill(f"previewed {uuid.uuid4().hex[:6]}")
    await form.locator("[name=task_type]").select_option("demo.sleep")
    await form.locator("[name=scheduler_type]").select_option("interval")
    await form.locator("[name='schedule_config.minutes']").fill("90")
    preview = page.locator("#schedule-preview-runs")
    await expect(preview.locator("li")).to_have_count(5)

    # As you type: a bad option shows the API's reason instead of runs.
    await form.locator("[name='schedule_config.jitter_seconds']").fill("6000")
    await expect(preview).to_contain_text("jitter_seconds")
    await form.locator("[name='schedule_config.jitter_seconds']").fill("60")
    await form.locator("[name='schedule_config.max_runs']").fill("2")
    await expect(preview.locator("li")).to_have_count(2)
    await expect(page.locator("#schedule-preview")).to_contain_text("max_runs leaves 2 runs")

    await form.locator("button[type=submit]").click()
    listed = page.locator("#next-runs-list")
    await expect(listed.locator("li")).to_have_count(2)
    await expect(listed).to_contain_text("Not active")
    await expect(page.locator("#schedule-words")).to_contain_text("at most 2 runs")
    # The browser logs the preview's 422 (the bad jitter) as a failed load; nothing else.
    assert all("status of 422" in message for message in errors.messages), errors.messages

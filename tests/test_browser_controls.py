"""The operator controls in a real browser (Chromium through Playwright),
against the live test server and the test Redis: the script parts htmx
cannot be tested without — refused answers swapped in, the prompt's reason
sent as a form field, "Run anyway", the bulk selection."""

from __future__ import annotations

import pytest

from monitor_app.models import CommandRecord

CAMERA_ACQ = "\\DEMO::TOP.CAMERA:ACQ_ACTION"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("pubsub_log"),
]


def css(value: str) -> str:
    """A value for a CSS attribute selector: a backslash escapes there."""
    return value.replace("\\", "\\\\")


@pytest.fixture
def page(browser, live_server, operator, settings):
    """An operator's tab on pytest-django's live server (same database as
    the test, so the audit records can be checked)."""
    from django.test import Client

    client = Client()
    client.force_login(operator)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    context = browser.new_context(base_url=live_server.url)
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
    )
    yield context.new_page()
    context.close()


def test_abort_with_a_reason_then_a_refusal_next_to_its_field(page, load_snapshot, redis_db):
    load_snapshot("do_phase_PULSE_ON")
    page.goto("/actions/?tree=DEMO&shot=42")
    page.once("dialog", lambda d: d.accept("camera stuck"))
    row = page.locator("tr", has=page.locator(f'input[name="path"][value="{css(CAMERA_ACQ)}"]'))
    row.first.get_by_role("button", name="Abort").click()
    result = page.locator("#command-result")
    result.get_by_text("Abort of").wait_for()
    assert "ABORT+" + CAMERA_ACQ in result.inner_text()
    record = CommandRecord.objects.get(command="abort_action")
    assert record.reason == "camera stuck"

    asked: list[str] = []
    page.on("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.fill("#bar-shot", "-1")
    page.get_by_role("button", name="Create Pulse").click()
    page.locator("#bar-err-shot").get_by_text("not a shot number").wait_for()
    assert page.get_attribute("#bar-shot", "aria-invalid") == "true"
    assert "not sent" in result.inner_text()
    assert asked == []  # refused before anyone is asked to confirm
    refused = CommandRecord.objects.get(command="create_pulse")
    assert refused.refused and refused.arguments["shot"] == "-1"

    # Abort Sequence needs no shot: its check leaves the shot's message standing
    with page.expect_event("dialog"):
        page.get_by_role("button", name="Abort Sequence").click()
    assert asked[-1].startswith("Abort the running sequence?")
    assert "not a shot number" in page.inner_text("#bar-err-shot")

    page.fill("#bar-text", "rm -rf /")
    page.get_by_role("button", name="Send").click()
    page.locator("#bar-err-text").get_by_text("Unknown dispatcher command").wait_for()
    assert len(asked) == 1  # no question for it: only Abort Sequence's above

    # input that holds: the question comes, earlier messages go, Cancel sends nothing
    page.fill("#bar-shot", "43")
    page.get_by_role("button", name="Create Pulse").click()
    page.wait_for_function("() => !document.querySelector('#bar-err-shot').textContent")
    assert asked[-1].startswith("Create this pulse?")
    assert page.get_attribute("#bar-shot", "aria-invalid") is None
    assert result.inner_text().strip() == ""  # nor the refusal above them

    # quit, which the console cannot undo, is asked about in its own words
    page.fill("#bar-text", "quit")
    page.get_by_role("button", name="Send").click()
    page.wait_for_function("() => !document.querySelector('#bar-err-text').textContent")
    assert asked[-1].startswith("Quit the dispatcher? It exits")
    assert page.get_attribute("#bar-command", "hx-prompt").startswith("Send this command")
    assert not CommandRecord.objects.filter(command="quit").exists()  # cancelled
    assert CommandRecord.objects.filter(command="create_pulse").count() == 1


def test_do_phase_asks_then_run_anyway_sends(page, load_snapshot, redis_db):
    load_snapshot("do_phase_INIT")
    page.goto("/actions/?tree=DEMO&shot=42")
    page.fill("#bar-phase", "INIT")
    page.get_by_role("button", name="Do Phase").click()
    page.get_by_role("button", name="Run anyway").click()
    page.locator("#command-result").get_by_text("Do phase INIT of DEMO 42 sent").wait_for()
    assert CommandRecord.objects.get(command="do_phase").ok


def test_bulk_selection_dispatches_the_ticked_rows(page, load_snapshot, redis_db):
    load_snapshot("do_phase_INIT")
    page.goto("/actions/?tree=DEMO&shot=42")
    bulk = page.get_by_role("button", name="Dispatch selected")
    assert bulk.is_disabled()
    for path in ("\\DEMO::TOP.DAQ.ADC1:INIT_ACTION", "\\DEMO::TOP.TIMING:INIT_ACTION"):
        page.locator(f'input[data-select-action][value="{css(path)}"]').first.check()
    assert "2 action(s) selected" in page.inner_text("#bulk-count")
    page.once("dialog", lambda d: d.accept())
    bulk.click()
    page.locator("#command-result").get_by_text("dispatched to TIMING_SERVER").wait_for()
    assert redis_db.llen("ACTION_SERVER_TODO:DAQ_SERVER") == 1
    assert redis_db.llen("ACTION_SERVER_TODO:TIMING_SERVER") == 1

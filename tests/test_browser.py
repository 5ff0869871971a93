"""The console in headless Chromium: log in, watch rows change live."""

from __future__ import annotations

import pytest

from tests.browser import login

pytestmark = pytest.mark.browser

ADC1 = "\\DEMO::TOP.DAQ.ADC1:STORE_ACTION"


def row_of(page, text: str, table: str = "all"):
    return page.locator(f"table[data-table={table}] tr", has_text=text)


def test_login_form_and_live_action_row(live_console, page, load_snapshot, redis_db):
    load_snapshot("do_phase_STORE")
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    base = live_console.url
    page.goto(base + "/actions/")
    assert "/accounts/login/" in page.url  # anonymous: sent to the login form
    login(page, base, "vera")
    page.goto(base + "/actions/?tree=DEMO&shot=42")
    page.wait_for_selector("#ws-state.ws-live")
    row = row_of(page, "ADC1:STORE_ACTION")
    assert "cat-success" in row.get_attribute("class")
    page.wait_for_timeout(700)  # the reader takes the pulse in
    redis_db.hset("ACTION_INFO:DEMO:42:DAQ_SERVER", ADC1, "DOING")
    redis_db.hset("ACTION_STATUS:DEMO:42", ADC1, "None")
    redis_db.publish("DISPATCH_MONITOR_PUBSUB", f"DOING+DEMO+42+DAQ_SERVER+1+{ADC1}+17")
    page.wait_for_function(
        "p => [...document.querySelectorAll('table[data-table=all] tr')]"
        ".some(tr => tr.innerText.includes(p) && tr.innerText.includes('DOING')"
        " && tr.classList.contains('cat-busy'))",
        arg="ADC1:STORE_ACTION",
        timeout=5000,
    )
    redis_db.hset("ACTION_INFO:DEMO:42:DAQ_SERVER", ADC1, "DONE")
    redis_db.hset("ACTION_STATUS:DEMO:42", ADC1, "Failure")
    redis_db.publish("DISPATCH_MONITOR_PUBSUB", f"DONE+DEMO+42+DAQ_SERVER+1+{ADC1}+17+Failure")
    page.wait_for_function(
        "p => [...document.querySelectorAll('table[data-table=all] tr')]"
        ".some(tr => tr.innerText.includes(p) && tr.classList.contains('cat-failed'))",
        arg="ADC1:STORE_ACTION",
        timeout=5000,
    )
    assert "Failed: 2" in page.locator("#summary").inner_text()
    assert page.url.endswith("/actions/?tree=DEMO&shot=42")  # no reload happened
    # a change to a row this page does not show is dropped without an error
    page.goto(base + "/actions/?tree=DEMO&shot=42&server=CAMERA_SERVER")
    page.wait_for_selector("#ws-state.ws-live")
    adc2 = "\\DEMO::TOP.DAQ.ADC2:STORE_ACTION"
    redis_db.hset("ACTION_INFO:DEMO:42:DAQ_SERVER", adc2, "DOING")
    redis_db.publish("DISPATCH_MONITOR_PUBSUB", f"DOING+DEMO+42+DAQ_SERVER+1+{adc2}+18")
    page.wait_for_function(
        "() => document.getElementById('summary').innerText.includes('Doing: 1')", timeout=5000
    )
    assert errors == []


def test_server_going_off_on_the_server_monitor(live_console, page, load_snapshot, redis_db):
    load_snapshot("do_phase_INIT")
    login(page, live_console.url, "vera")
    page.wait_for_selector("#ws-state.ws-live")
    camera = page.locator("#servers-table tr", has_text="CAMERA_SERVER")
    assert "ON" in camera.inner_text()
    redis_db.hset("ACTION_SERVER_ACTIVE:CAMERA_SERVER", "1", "OFF")  # silently, as a server does
    page.wait_for_function(
        "() => [...document.querySelectorAll('#servers-table tr')]"
        ".some(tr => tr.innerText.includes('CAMERA_SERVER') && tr.classList.contains('srv-off'))",
        timeout=5000,
    )


def test_action_log_dialog_shows_escaped_output(live_console, page, load_snapshot, redis_db):
    load_snapshot("do_phase_STORE")
    path = "\\DEMO::TOP.CAMERA:CHECK_ACTION"
    redis_db.hset("ACTION_LOG:DEMO:42", path, "<img src=x onerror=alert(1)>\nsensor too hot")
    login(page, live_console.url, "vera")
    page.goto(live_console.url + "/actions/?tree=DEMO&shot=42")
    row_of(page, "CAMERA:CHECK_ACTION").get_by_text("Logs").click()
    page.wait_for_selector("#log-dialog[open] #log-text")
    text = page.locator("#log-text").inner_text()
    assert "<img src=x onerror=alert(1)>" in text and "sensor too hot" in text
    assert page.locator("#log-text img").count() == 0
    # the action reports again: Reload shows the log as it is now
    redis_db.hset("ACTION_LOG:DEMO:42", path, "sensor cooled down")
    page.locator("#log-dialog").get_by_text("Reload").click()
    page.locator("#log-text").get_by_text("sensor cooled down").wait_for()
    assert page.locator("#log-dialog[open]").count() == 1
    # closed and opened again, on another row: the dialog's body must survive
    # the first answer (it once took the table's outerHTML swap and vanished)
    redis_db.hset("ACTION_LOG:DEMO:42", "\\DEMO::TOP.CAMERA:INIT_ACTION", "frame grabber open")
    page.get_by_role("button", name="Close").click()
    page.wait_for_selector("#log-dialog[open]", state="detached")
    row_of(page, "CAMERA:INIT_ACTION").get_by_text("Logs").click()
    page.wait_for_selector("#log-dialog[open] #log-text")
    assert "frame grabber open" in page.locator("#log-text").inner_text()
    page.get_by_role("button", name="Close").click()
    page.goto(live_console.url + "/servers/")
    for _ in range(2):
        page.locator("tr", has_text="CAMERA_SERVER").get_by_text("Server log").first.click()
        page.wait_for_selector(
            "#log-dialog[open] #log-dialog-body h2, #log-dialog[open] #log-dialog-body p"
        )
        assert "CAMERA_SERVER" in page.locator("#log-dialog-body").inner_text()
        page.get_by_role("button", name="Close").click()
        page.wait_for_selector("#log-dialog[open]", state="detached")


def test_log_viewer_appends_and_pauses(live_console, page, redis_db):
    from pathlib import Path

    from monitor_app.pubsub_log import append_line

    log = Path(live_console.workdir) / "redis_pubsub.log"
    append_line("DISPATCH_MONITOR_PUBSUB", "END_PHASE+DEMO+42+INIT", log)
    login(page, live_console.url, "otto")
    page.goto(live_console.url + "/logs/")
    page.wait_for_selector("#ws-state.ws-live")
    assert "END_PHASE+DEMO+42+INIT" in page.locator("#log-lines").inner_text()
    append_line("DISPATCH_MONITOR_PUBSUB", "END_PHASE+DEMO+42+STORE", log)
    page.wait_for_function(
        "() => document.getElementById('log-lines').innerText.includes('42+STORE')", timeout=5000
    )
    page.click("#log-pause")
    append_line("DISPATCH_MONITOR_PUBSUB", "END_PHASE+DEMO+43+INIT", log)
    page.wait_for_selector("#log-buffered:not([hidden])", timeout=5000)
    assert "43+INIT" not in page.locator("#log-lines").inner_text()
    page.click("#log-pause")
    page.wait_for_function(
        "() => document.getElementById('log-lines').innerText.includes('43+INIT')", timeout=5000
    )
    page.fill("#log-note", "cooling water checked")
    page.click("#log-note-form button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('log-lines').innerText"
        ".includes('otto: cooling water checked')",
        timeout=5000,
    )


def test_operator_aborts_and_dispatches_on_the_simulated_plant(
    live_console, page, redis_db, simulate
):
    """Abort and Dispatch clicked on rows; the simulated servers act on them
    and the rows change without a reload."""
    from monitor_app.simulator.plant import load_plant
    from monitor_app.simulator.runner import default_servers
    from tests.conftest import FIXTURES
    from tests.sim_fixtures import command, start_pulse, wait_until

    plant = load_plant(FIXTURES / "e2e_plant.toml")
    simulate(plant, servers=default_servers(plant))
    start_pulse(redis_db)
    command(redis_db, "do_phase:DEMO:42:PULSE_ON")
    long = "\\DEMO::TOP.CAMERA:ACQ_ACTION"
    wait_until(lambda: redis_db.hget("ACTION_INFO:DEMO:42:CAMERA_SERVER", long) == "DOING")

    login(page, live_console.url, "otto")
    page.goto(live_console.url + "/actions/?tree=DEMO&shot=42")
    page.wait_for_selector("#ws-state.ws-live")
    row = row_of(page, "CAMERA:ACQ_ACTION")
    assert "DOING" in row.inner_text()
    page.once("dialog", lambda dialog: dialog.accept("operator test"))
    row.get_by_role("button", name="Abort").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('table[data-table=all] tr')].some("
        "tr => tr.innerText.includes('CAMERA:ACQ_ACTION') && tr.innerText.includes('Aborted'))",
        timeout=20000,
    )
    assert "cat-failed" in row_of(page, "CAMERA:ACQ_ACTION").get_attribute("class")

    page.once("dialog", lambda dialog: dialog.accept())
    row_of(page, "CAMERA:ACQ_ACTION").get_by_role("button", name="Dispatch").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('table[data-table=all] tr')].some("
        "tr => tr.innerText.includes('CAMERA:ACQ_ACTION') && tr.innerText.includes('DOING'))",
        timeout=20000,
    )
    assert redis_db.hget("ACTION_INFO:DEMO:42:CAMERA_SERVER", long) == "DOING"


def test_actions_monitor_follows_the_dispatcher_to_a_new_pulse(
    live_console, page, load_snapshot, redis_db
):
    keys = load_snapshot("do_phase_STORE")
    login(page, live_console.url, "vera")
    page.goto(live_console.url + "/actions/?q=ADC&sort=-node&page=1")
    page.wait_for_selector("#ws-state.ws-live")
    assert page.locator("#pulse-select option[selected]").inner_text() == "DEMO 42"
    # the dispatcher builds the tables of shot 43: the page follows by itself,
    # keeping the operator's filter and sort
    for name, entry in keys.items():
        if ":42" in name and entry["type"] == "hash" and entry["value"]:
            redis_db.hset(name.replace(":42", ":43"), mapping=entry["value"])
    redis_db.set("LAST_BUILD_TABLE", '{"tree": "DEMO", "shot": "43"}')
    page.wait_for_function(
        "() => document.querySelector('#pulse-select option[selected]').innerText === 'DEMO 43'",
        timeout=10000,
    )
    assert page.url.endswith("/actions/?q=ADC&sort=-node")
    assert page.input_value("#f-q") == "ADC"
    # a page opened on a pulse stays there, and says the dispatcher moved on
    page.goto(live_console.url + "/actions/?tree=DEMO&shot=43")
    page.wait_for_selector("#ws-state.ws-live")
    redis_db.set("LAST_BUILD_TABLE", '{"tree": "DEMO", "shot": "42"}')
    page.wait_for_selector("#pulse-moved:not([hidden])", timeout=10000)
    assert "current pulse is DEMO 42" in page.locator("#pulse-moved").inner_text()
    assert page.url.endswith("shot=43")


def _copy_pulse(redis_db, keys: dict, shot: int) -> None:
    """Shot 42's tables of the recording as those of ``shot``, then built."""
    for name, entry in keys.items():
        if ":42" in name and entry["type"] == "hash" and entry["value"]:
            redis_db.hset(name.replace(":42", f":{shot}"), mapping=entry["value"])
    redis_db.set("LAST_BUILD_TABLE", f'{{"tree": "DEMO", "shot": "{shot}"}}')


def _shown_pulse(page) -> str:
    return page.locator("#pulse-select option[selected]").inner_text()


def test_following_waits_for_the_operator_and_after_a_follow(
    live_console, page, load_snapshot, redis_db
):
    """Follow mode does not navigate over a command's answer (it says the
    dispatcher moved on instead), and after following it holds a second
    change back for a few seconds, then follows it too."""
    keys = load_snapshot("do_phase_STORE")
    login(page, live_console.url, "otto")
    page.goto(live_console.url + "/actions/")
    page.wait_for_selector("#ws-state.ws-live")
    # an answer on the page: a refused Create Pulse
    page.fill("#bar-shot", "-1")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Create Pulse").click()
    page.locator("#bar-err-shot").get_by_text("not a shot number").wait_for()
    page.locator("h1").first.click()  # nothing focused: only the answer holds it back
    _copy_pulse(redis_db, keys, 43)
    page.wait_for_selector("#pulse-moved:not([hidden])", timeout=10000)
    assert "current pulse is DEMO 43" in page.locator("#pulse-moved").inner_text()
    assert _shown_pulse(page) == "DEMO 42" and "not sent" in page.inner_text("#command-result")
    # a fresh page follows the next pulse at once...
    page.goto(live_console.url + "/actions/")
    page.wait_for_selector("#ws-state.ws-live")
    assert _shown_pulse(page) == "DEMO 43"
    _copy_pulse(redis_db, keys, 44)
    page.wait_for_function(
        "() => document.querySelector('#pulse-select option[selected]').innerText === 'DEMO 44'",
        timeout=10000,
    )
    page.wait_for_selector("#ws-state.ws-live")
    # ...and one that comes straight after is first announced, then followed
    _copy_pulse(redis_db, keys, 45)
    page.wait_for_selector("#pulse-moved:not([hidden])", timeout=4000)
    assert _shown_pulse(page) == "DEMO 44"
    page.wait_for_function(
        "() => document.querySelector('#pulse-select option[selected]').innerText === 'DEMO 45'",
        timeout=15000,
    )


def test_a_tab_whose_login_ended_goes_to_the_login_page(live_console, page, redis_db):
    login(page, live_console.url, "vera")
    page.goto(live_console.url + "/heartbeat/")
    page.wait_for_selector("#ws-state.ws-live")
    other = page.context.new_page()  # the same browser, the same login
    other.goto(live_console.url + "/servers/")
    other.get_by_role("button", name="Log out").click()
    page.wait_for_url(live_console.url + "/accounts/login/?next=%2Fheartbeat%2F", timeout=10000)

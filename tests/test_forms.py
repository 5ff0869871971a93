"""The command forms refuse what the services refuse, with the same
messages, and hand the services clean values."""

from __future__ import annotations

import pytest

from monitor_app import forms
from monitor_app import services as s
from monitor_app.validation import ParsedCommand

BAD = ["; rm -rf /", "$(id)", "../../etc", "A+B", "A:B", "ÅSE", "x" * 70]


def test_pulse_form_cleans():
    form = forms.PulseForm({"tree": " demo ", "shot": "042"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data == {"tree": "DEMO", "shot": 42}


@pytest.mark.parametrize("tree", ["", *BAD, "1ABC"])
def test_pulse_form_bad_tree(tree):
    form = forms.PulseForm({"tree": tree, "shot": "42"})
    assert not form.is_valid()
    assert list(form.errors) == ["tree"]


@pytest.mark.parametrize("shot", ["", "0", "-1", "4.0", "2147483648", "9" * 20, "$(id)", "４２"])
def test_pulse_form_bad_shot(shot):
    form = forms.PulseForm({"tree": "DEMO", "shot": shot})
    assert not form.is_valid()
    assert list(form.errors) == ["shot"]


def test_phase_form():
    form = forms.PhaseForm({"tree": "demo", "shot": "42", "phase": "init"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data == {"tree": "DEMO", "shot": 42, "phase": "INIT", "confirm": False}
    form = forms.PhaseForm({"tree": "demo", "shot": "42", "phase": "IN IT", "confirm": "on"})
    assert list(form.errors) == ["phase"]


def test_sequence_form_range():
    form = forms.SequenceForm(
        {"tree": "DEMO", "shot": "42", "phase": "INIT", "start": "20", "end": "10"}
    )
    assert not form.is_valid() and list(form.errors) == ["end"]


def test_dispatcher_command_form_parses():
    form = forms.DispatcherCommandForm({"text": "do_sequence:demo:42:init:10:20"})
    assert form.is_valid(), form.errors
    parsed = form.cleaned_data["text"]
    assert isinstance(parsed, ParsedCommand)
    assert parsed.message == "do_sequence:DEMO:42:INIT:10:20"


@pytest.mark.parametrize(
    "text", ["", "rm -rf /", "abort; quit", "do_phase:DEMO:42", "create_pulse:DEMO:$(id)"]
)
def test_dispatcher_command_form_refuses(text):
    form = forms.DispatcherCommandForm({"text": text})
    assert not form.is_valid() and "text" in form.errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("quit:now", "quit takes no arguments: send quit alone."),
        ("do_phase:DEMO:42", "do_phase takes 3 arguments: do_phase:TREE:SHOT:PHASE."),
    ],
)
def test_a_wrong_number_of_arguments_says_how_many(text, message):
    form = forms.DispatcherCommandForm({"text": text})
    assert not form.is_valid() and form.errors["text"] == [message]


def test_action_form_takes_several_paths():
    from django.http import QueryDict

    data = QueryDict(mutable=True)
    data.update({"tree": "DEMO", "shot": "42"})
    data.setlist("path", ["\\DEMO::TOP.A:INIT", "\\DEMO::TOP.B:INIT", "\\DEMO::TOP.A:INIT"])
    form = forms.ActionForm(data)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["path"] == ["\\DEMO::TOP.A:INIT", "\\DEMO::TOP.B:INIT"]


@pytest.mark.parametrize("path", ["", "\\DEMO::A+B", "\\DÉMO::A", "a b", "x\ny"])
def test_action_form_bad_path(path):
    form = forms.ActionForm({"tree": "DEMO", "shot": "42", "path": [path]})
    assert not form.is_valid() and "path" in form.errors


def test_server_form_defaults_the_id():
    form = forms.ServerForm({"ident": "DAQ_SERVER", "server_id": "", "reason": " hung\n "})
    assert form.is_valid(), form.errors
    assert form.cleaned_data == {"ident": "DAQ_SERVER", "server_id": "1", "reason": "hung"}
    for ident in BAD:
        assert "ident" in forms.ServerForm({"ident": ident}).errors
    assert "server_id" in forms.ServerForm({"ident": "A", "server_id": "1;id"}).errors


def test_log_message_form():
    assert forms.LogMessageForm({"message": "beam dump"}).is_valid()
    assert "message" in forms.LogMessageForm({"message": "   "}).errors


def test_form_and_service_give_the_same_message(db):
    form = forms.PulseForm({"tree": "$(id)", "shot": "42"})
    form.is_valid()
    with pytest.raises(s.CommandRefused) as info:
        s.pulse_create(tree="$(id)", shot=42, actor=s.Actor("t", "shell"))
    assert form.errors["tree"] == info.value.errors["tree"]


def test_refusal_goes_next_to_the_field():
    form = forms.ActionForm({"tree": "DEMO", "shot": "42", "path": ["\\DEMO::X"]})
    assert form.is_valid()
    s.CommandRefused({"path": ["not an action"], "__all__": ["and more"]}).add_to_form(form)
    assert form.errors["path"] == ["not an action"]
    assert form.non_field_errors() == ["and more"]


def test_admin_lists_records_read_only(admin_client, db):
    from monitor_app.models import CommandRecord

    record = CommandRecord.objects.create(
        username="otto", source="shell", command="abort", ok=True, result="sent"
    )
    page = admin_client.get("/admin/monitor_app/commandrecord/?source__exact=shell&ok__exact=1")
    assert page.status_code == 200 and b"otto" in page.content
    assert admin_client.get("/admin/monitor_app/commandrecord/add/").status_code == 403
    change = admin_client.get(f"/admin/monitor_app/commandrecord/{record.pk}/change/")
    assert change.status_code == 200 and b'name="_save"' not in change.content
    delete = admin_client.post(f"/admin/monitor_app/commandrecord/{record.pk}/delete/")
    assert delete.status_code == 403 and CommandRecord.objects.count() == 1

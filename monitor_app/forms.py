"""Forms for the operator commands. They only check the inputs, with the
validators the services use (``validation``), so the page and the shell
refuse the same things; the views pass ``cleaned_data`` on to a service and
put a ``CommandRefused`` back with ``exc.add_to_form(form)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from monitor_app import protocol as p
from monitor_app import validation as v


class CleanedField(forms.CharField):
    """A text field whose value is whatever a ``validation.clean_*`` function
    makes of it (upper-cased tree, int shot, ...)."""

    def __init__(self, cleaner: Callable[[Any], Any], **kwargs: Any):
        self.cleaner = cleaner
        kwargs.setdefault("strip", True)
        label = kwargs.get("label")
        if label:  # the message stands alone next to its field: say which
            messages = {"required": f"Enter a {label.lower()}."}
            kwargs["error_messages"] = {**messages, **kwargs.get("error_messages", {})}
        super().__init__(**kwargs)

    def clean(self, value: Any) -> Any:
        value = super().clean(value)
        if value in self.empty_values:
            return None
        return self.cleaner(value)


class MultiplePathField(forms.Field):
    """One or more action paths (``request.POST.getlist``), each kept exactly
    as sent; whether they are actions of the pulse is the service's check."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[str]:
        if value in self.empty_values:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, (list, tuple)):
            raise ValidationError("Action paths must be a list.", code="invalid")
        return list(value)

    def validate(self, value: list[str]) -> None:
        if self.required and not value:
            raise ValidationError("Select at least one action.", code="required")

    def clean(self, value: Any) -> list[str]:
        paths = super().clean(value)
        errors, clean = [], []
        for path in paths:
            try:
                clean.append(v.clean_action_path(path))
            except ValidationError as exc:
                errors.extend(exc.messages)
        if errors:
            raise ValidationError(errors)
        return list(dict.fromkeys(clean))  # each path once


def _tree() -> CleanedField:
    return CleanedField(v.clean_tree, max_length=v.NAME_MAX, label="Tree")


def _shot() -> CleanedField:
    return CleanedField(v.clean_shot, max_length=12, label="Shot")


def _reason() -> CleanedField:
    return CleanedField(
        v.clean_reason, required=False, max_length=v.REASON_MAX, label="Reason (optional)"
    )


class CommandForm(forms.Form):
    """The input of an operator command."""

    def question(self) -> str:
        """What the page asks before sending, once the input holds, when it
        is not the page's own question ('' keeps the page's)."""
        return ""


class PulseForm(CommandForm):
    """Create Pulse and Build Tables."""

    tree = _tree()
    shot = _shot()


class PhaseForm(CommandForm):
    """Do Phase; ``confirm`` is set once the operator has seen the warnings."""

    tree = _tree()
    shot = _shot()
    phase = CleanedField(v.clean_phase, max_length=v.NAME_MAX, label="Phase")
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)


class SequenceForm(CommandForm):
    """Do Sequence: the sequential actions of a phase numbered START..END."""

    tree = _tree()
    shot = _shot()
    phase = CleanedField(v.clean_phase, max_length=v.NAME_MAX, label="Phase")
    start = CleanedField(lambda x: v.clean_sequence_number(x, "START"), max_length=10)
    end = CleanedField(lambda x: v.clean_sequence_number(x, "END"), max_length=10)
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("start") is not None and data.get("end") is not None:
            try:
                v.check_sequence_range(data["start"], data["end"])
            except ValidationError as exc:
                self.add_error("end", exc)
        return data


class DispatcherCommandForm(CommandForm):
    """Any other dispatcher command, parsed against the grammar:
    ``cleaned_data["text"]`` is a ``validation.ParsedCommand``."""

    text = CleanedField(
        v.clean_dispatcher_command,
        max_length=v.COMMAND_TEXT_MAX,
        label="Dispatcher command",
        help_text="e.g. do_sequence:DEMO:42:INIT:10:20, abort_pending, print_pending",
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)
    reason = _reason()

    #: Asked instead of the page's usual question, for what cannot be undone
    #: from the console.
    QUESTIONS = {
        p.CMD_QUIT: "Quit the dispatcher? It exits: nothing is dispatched until it is started "
        "again outside the console. Reason (optional, at most 500 characters); Cancel sends "
        "nothing:",
    }

    def question(self) -> str:
        parsed = self.cleaned_data.get("text")
        return self.QUESTIONS.get(parsed.verb, "") if parsed else ""


class ActionForm(CommandForm):
    """Dispatch, Abort or Logs of one or more actions (``path`` repeated)."""

    tree = _tree()
    shot = _shot()
    path = MultiplePathField(label="Actions")
    reason = _reason()


class ServerForm(CommandForm):
    """Start, Stop, Restart, Quit, Kill of one server."""

    ident = CleanedField(v.clean_server_class, max_length=v.NAME_MAX, label="Server class")
    server_id = CleanedField(v.clean_server_id, required=False, max_length=6, label="Server id")
    reason = _reason()

    def clean_server_id(self) -> str:
        return self.cleaned_data.get("server_id") or "1"


class LogMessageForm(forms.Form):
    """A message typed into the Log Viewer."""

    message = CleanedField(v.clean_log_message, max_length=v.MESSAGE_MAX, label="Message")


class ReasonForm(CommandForm):
    """A command without arguments of its own (Abort Sequence, Start all,
    Kill all): only the optional reason."""

    reason = _reason()


class AuditFilterForm(forms.Form):
    """The Audit page's filters. A value that is not understood filters
    nothing, and the page says so, rather than failing a bookmarked URL."""

    user = forms.CharField(required=False, max_length=150, label="User")
    command = forms.CharField(required=False, max_length=64, label="Command")
    tree = forms.CharField(required=False, max_length=v.NAME_MAX, label="Tree")
    shot = forms.CharField(required=False, max_length=12, label="Shot")
    outcome = forms.ChoiceField(
        required=False,
        choices=[("", "any"), ("ok", "ok"), ("failed", "failed or refused")],
        label="Outcome",
    )

    def clean_tree(self) -> str:
        return (self.cleaned_data.get("tree") or "").strip().upper()

    def clean_shot(self) -> str:
        shot = (self.cleaned_data.get("shot") or "").strip()
        if not shot:
            return ""
        if not (shot.isascii() and shot.isdigit()):
            raise forms.ValidationError("a shot is a whole number, e.g. 42")
        return str(int(shot))

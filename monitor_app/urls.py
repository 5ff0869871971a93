from django.urls import path
from django.views.generic import RedirectView

from monitor_app import audit_views, command_views, views

app_name = "monitor"

urlpatterns = [
    path("", RedirectView.as_view(url="/servers/", permanent=False), name="home"),
    path("servers/", views.servers_page, name="servers"),
    path("servers/log/", command_views.server_log, name="server_log"),
    path("actions/", views.actions_page, name="actions"),
    path("actions/log/", views.action_log, name="action_log"),
    path("logs/", views.logs_page, name="logs"),
    path("logs/note/", views.log_note, name="log_note"),
    path("heartbeat/", views.heartbeat_page, name="heartbeat"),
    path("audit/", audit_views.audit_page, name="audit"),
    # Operator commands: POST only, CSRF, operators only.
    path("commands/pulse/create/", command_views.pulse_create, name="cmd_pulse_create"),
    path("commands/tables/build/", command_views.tables_build, name="cmd_tables_build"),
    path("commands/phase/do/", command_views.phase_do, name="cmd_phase_do"),
    path("commands/sequence/abort/", command_views.sequence_abort, name="cmd_sequence_abort"),
    path("commands/dispatcher/", command_views.dispatcher_command, name="cmd_dispatcher"),
    path("commands/actions/dispatch/", command_views.actions_dispatch, name="cmd_dispatch"),
    path("commands/actions/abort/", command_views.actions_abort, name="cmd_abort"),
    path("commands/servers/all/<slug:verb>/", command_views.servers_all, name="cmd_servers_all"),
    path("commands/servers/<slug:verb>/", command_views.server_command, name="cmd_server"),
]

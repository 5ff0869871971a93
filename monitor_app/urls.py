from django.urls import path
from django.views.generic import RedirectView

from monitor_app import views

app_name = "monitor"

urlpatterns = [
    path("", RedirectView.as_view(url="/servers/", permanent=False), name="home"),
    path("servers/", views.servers_page, name="servers"),
    path("actions/", views.actions_page, name="actions"),
    path("actions/log/", views.action_log, name="action_log"),
    path("logs/", views.logs_page, name="logs"),
    path("logs/note/", views.log_note, name="log_note"),
    path("heartbeat/", views.heartbeat_page, name="heartbeat"),
]

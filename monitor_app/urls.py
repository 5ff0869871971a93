from django.urls import path
from django.views.generic import RedirectView

app_name = "monitor"

urlpatterns = [
    path("", RedirectView.as_view(url="/servers/", permanent=False), name="home"),
]

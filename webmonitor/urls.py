from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

# Log in and out, and change one's own password. No password reset: it
# mails a link, and the console sends no mail (an administrator resets
# passwords with ``manage.py changepassword``).
accounts = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include(accounts)),
    path("", include("monitor_app.urls")),
]

"""``manage.py console_user NAME --role operator|viewer``: create or update a
console user in one of the two roles."""

from __future__ import annotations

import getpass
import os

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

ROLES = {"operator": "operators", "viewer": "viewers"}


class Command(BaseCommand):
    help = "Create (or update) a console user as an operator or a viewer."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", choices=sorted(ROLES), default="viewer")
        parser.add_argument(
            "--password-env",
            metavar="VAR",
            help="read the password from this environment variable instead of asking",
        )

    def handle(self, *args, username: str, role: str, password_env: str | None, **options):
        if password_env:
            password = os.environ.get(password_env, "")
            if not password:
                raise CommandError(f"the environment variable {password_env} is empty or unset")
        else:
            password = getpass.getpass(f"Password for {username}: ")
            if password != getpass.getpass("Again: "):
                raise CommandError("the two passwords differ")
        if len(password) < 8:
            raise CommandError("a password needs at least 8 characters")
        user, created = get_user_model().objects.get_or_create(username=username)
        user.set_password(password)
        user.save()
        user.groups.remove(*Group.objects.filter(name__in=ROLES.values()))
        user.groups.add(Group.objects.get(name=ROLES[role]))
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} {role} {username}.")

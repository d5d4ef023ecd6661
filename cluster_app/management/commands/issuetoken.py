"""``manage.py issuetoken USERNAME [--create-user] [--rotate]``: print a REST API token.

The token goes in ``Authorization: Token <key>``; it is what a client needs to
submit tasks to a gateway whose writes need authentication (see
tasks_app/api/permissions). Only the key is printed, alone on its line, so a
script can capture it: ``TOKEN=$(python manage.py issuetoken ci)``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Print USERNAME's REST API token, creating it (and with --create-user, the user)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--create-user",
            action="store_true",
            help="create the user if missing (without a password: no admin login)",
        )
        parser.add_argument(
            "--rotate",
            action="store_true",
            help="replace an existing token with a new one (the old one stops working)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"].strip()
        if not username:
            raise CommandError("USERNAME must not be empty")
        User = get_user_model()
        with transaction.atomic():
            try:
                user = User.objects.get(**{User.USERNAME_FIELD: username})
            except User.DoesNotExist:
                if not options["create_user"]:
                    raise CommandError(
                        f"no user {username!r}; pass --create-user to create it"
                    ) from None
                user = User(**{User.USERNAME_FIELD: username})
                user.set_unusable_password()
                user.full_clean(exclude=["password"])
                user.save()
                self.stderr.write(f"created user {username!r}")
            if not user.is_active:
                raise CommandError(f"user {username!r} is inactive; its token would not work")
            if options["rotate"]:
                Token.objects.filter(user=user).delete()
            token, created = Token.objects.get_or_create(user=user)
        if not created:
            self.stderr.write(f"existing token of {username!r} (use --rotate for a new one)")
        self.stdout.write(token.key)

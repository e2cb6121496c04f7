import sys

from django.core.management.base import BaseCommand, CommandError

from clypai.api.errors import ApiError
from projects.models import Membership
from projects.services import member_create


class Command(BaseCommand):
    help = (
        "Create a dashboard user who signs in with EMAIL, member of the team NAME (made "
        "when new, with the user as its owner). The password comes from standard input."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--team", required=True, help="the team's name (created when new)")
        parser.add_argument(
            "--role",
            choices=Membership.Role.values,
            help="owner or member (default: owner of a new team, member of an existing one)",
        )
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from standard input (its first line)",
        )

    def handle(self, *args, email, team, role=None, password_stdin=False, **options):
        if not password_stdin:
            raise CommandError("give the password on standard input with --password-stdin")
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("no password on standard input")
        try:
            user, team_obj, created = member_create(
                email=email, password=password, team_name=team, role=role
            )
        except ApiError as exc:
            raise CommandError(exc.message) from exc
        role_now = user.memberships.get(team=team_obj).role
        made = " (new team)" if created else ""
        self.stdout.write(f"{user.email}: {role_now} of {team_obj.name}{made}")

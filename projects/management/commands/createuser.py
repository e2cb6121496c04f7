import sys

from django.core.management.base import BaseCommand, CommandError

from clypai.api.errors import ApiError
from projects.models import Membership
from projects.services import member_ensure


class Command(BaseCommand):
    help = (
        "Make EMAIL a dashboard user and a member of the team NAME (made when new, with "
        "the user as its owner). A new user needs a password, read from standard input "
        "with --password-stdin. An existing user is added to NAME when not yet in it (their "
        "other teams stay), keeps their password unless --password-stdin gives a new one, "
        "and, when already in NAME, takes the --role given (a role update); with neither "
        "--role nor a password for a member already in NAME, nothing changes and the "
        "command fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--team", required=True, help="the team's name (created when new)")
        parser.add_argument(
            "--role",
            choices=Membership.Role.values,
            help="owner or member (default: owner of a new team, member of an existing one; "
            "for a user already in the team: their role changes to this one)",
        )
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from standard input (its first line); required for a "
            "new user, optional for an existing one (whose password it then changes)",
        )

    def handle(self, *args, email, team, role=None, password_stdin=False, **options):
        password = None
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("no password on standard input")
        try:
            change = member_ensure(email=email, team_name=team, role=role, password=password)
        except ApiError as exc:
            if exc.field == "password" and not password_stdin:
                raise CommandError(
                    f"{email} is a new user: give their password on standard input "
                    "with --password-stdin"
                ) from exc
            raise CommandError(exc.message) from exc
        user, team_obj, now = change.user, change.team, change.membership.role
        if not change.changed:
            raise CommandError(
                f"{user.email} is already {now} of {team_obj.name}: nothing to change "
                "(give --role to change their role, or --password-stdin their password)"
            )
        notes = []
        if change.team_created:
            notes.append("new team")
        if not change.user_created and change.role_before is None:
            notes.append("added to the team")
        elif change.role_before is not None and change.role_before != now:
            notes.append(f"was {change.role_before}")
        if change.password_changed:
            notes.append("password changed")
        made = f" ({', '.join(notes)})" if notes else ""
        self.stdout.write(f"{user.email}: {now} of {team_obj.name}{made}")

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from clypai.api.errors import ApiError
from projects.services import team_create


class Command(BaseCommand):
    help = "Create a team (the tenant) with its default project; prints the team's id."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--owner", help="username of an existing user to make owner")
        parser.add_argument("--quota", type=int, help="monthly clip quota (default: unlimited)")

    def handle(self, *args, name, owner=None, quota=None, **options):
        owner_user = None
        if owner:
            owner_user = get_user_model().objects.filter(username=owner).first()
            if owner_user is None:
                raise CommandError(f"no user named {owner!r}")
        try:
            team = team_create(name=name, owner=owner_user, monthly_clip_quota=quota)
        except ApiError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(team.pk)

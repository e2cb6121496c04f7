from django.core.management.base import BaseCommand, CommandError

from projects.models import Team
from projects.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a team. The key is printed once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--team", required=True, help="the team's name or id")
        parser.add_argument("--name", default="", help="a label for the key")

    def handle(self, *args, team, name, **options):
        found = Team.objects.filter(name=team).first() or Team.objects.filter(pk=team).first()
        if found is None:
            raise CommandError(f"no team named {team!r}")
        created = api_key_create(team=found, name=name)
        self.stderr.write(
            f"API key {created.api_key.prefix}… for team {found.name}; store it now, "
            "it is not shown again."
        )
        self.stdout.write(created.raw_key)

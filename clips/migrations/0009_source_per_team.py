# Sources (and their analyses) become per team: shared by hash across teams, how fast a
# clip finished told one team what another had processed. A source recorded before
# keeps its analyses and goes to the team that brought it first (its earliest upload,
# clip or job); other teams' clips still point at it, and their next source of the
# same bytes is their own.

import django.db.models.deletion
from django.db import migrations, models


def _first_team(apps, schema_editor):
    Source = apps.get_model("clips", "Source")
    for source in Source.objects.filter(team__isnull=True).iterator():
        found = [
            row
            for row in (
                source.uploads.order_by("created_at").values("team_id", "created_at").first(),
                source.clips.order_by("created_at").values("team_id", "created_at").first(),
                source.jobs.order_by("created_at").values("team_id", "created_at").first(),
            )
            if row
        ]
        if found:
            first = min(found, key=lambda row: row["created_at"])
            Source.objects.filter(pk=source.pk).update(team_id=first["team_id"])


class Migration(migrations.Migration):

    dependencies = [
        ('clips', '0008_export_error_details'),
        ('projects', '0002_plans'),
    ]

    operations = [
        migrations.AddField(
            model_name='source',
            name='team',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='sources', to='projects.team'),
        ),
        migrations.AlterField(
            model_name='source',
            name='sha256',
            field=models.CharField(db_index=True, max_length=64),
        ),
        migrations.AddConstraint(
            model_name='source',
            constraint=models.UniqueConstraint(fields=('team', 'sha256'), name='source_unique_team_sha256'),
        ),
        # Last: rows updated after the ALTERs (PostgreSQL refuses an ALTER TABLE with
        # the deferred foreign key checks of updated rows pending).
        migrations.RunPython(_first_team, migrations.RunPython.noop),
    ]

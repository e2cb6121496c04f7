from django.db import migrations, models


class Migration(migrations.Migration):
    """A re-render counts its full video against the team's render minutes (issue 16)."""

    dependencies = [
        ("clips", "0013_merge_0012_compute_quotas_0012_export_source_linked"),
    ]

    operations = [
        migrations.AddField(
            model_name="rerender",
            name="charged_seconds",
            field=models.FloatField(default=0.0),
        ),
        migrations.AddField(
            model_name="rerender",
            name="charged_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]

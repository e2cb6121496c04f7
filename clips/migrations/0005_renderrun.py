# RenderRun moves from the clypai app to clips. The table clypai's migrations made,
# clypai_renderrun, stays as it is, rows and all: this migration only tells Django's
# state that clips now owns the model, after clypai 0003 dropped it from clypai's.

import django.db.models.deletion
from django.db import migrations, models


def content_type_to_clips(apps, schema_editor):
    """Keep the model's content type row (and the permissions that hang on it)."""
    _relabel(apps, schema_editor, "clypai", "clips")


def content_type_to_clypai(apps, schema_editor):
    _relabel(apps, schema_editor, "clips", "clypai")


def _relabel(apps, schema_editor, old, new):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label=new, model="renderrun").exists():
        ContentType.objects.using(db).filter(app_label=old, model="renderrun").update(
            app_label=new
        )


class Migration(migrations.Migration):

    dependencies = [
        ('clips', '0004_usage_refunded'),
        # The table and all its columns come from clypai's migrations.
        ('clypai', '0003_renderrun_to_clips'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='RenderRun',
                    fields=[
                        ('clip', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='render_run', serialize=False, to='clips.clip')),
                        ('attempts', models.PositiveSmallIntegerField(default=0)),
                        ('heartbeat_at', models.DateTimeField(blank=True, null=True)),
                        ('charged_seconds', models.FloatField(default=0.0)),
                        ('charged_at', models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        'db_table': 'clypai_renderrun',
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_to_clips, content_type_to_clypai),
    ]

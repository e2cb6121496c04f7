# RenderRun moves to the clips app. Its table, clypai_renderrun, stays as it is, rows and
# all: this migration only drops the model from clypai's state, and clips 0005 (which
# runs after it) takes it over. Dropping first means no state ever holds two RenderRuns
# (both would claim the table and Clip.render_run).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('clypai', '0002_idempotency_render_charge'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name='RenderRun',
                ),
            ],
            database_operations=[],
        ),
    ]

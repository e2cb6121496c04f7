# "render" named five things; each gets its own word. A Job's `render` (what each of
# its clips gets: none, preview, full) is `clip_video`; a clip's render_* fields (its
# full render on request) are full_render_*; RenderRun is FullRender. The table of
# FullRender keeps its name (clypai_renderrun), so renaming the model moves no data.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('clips', '0005_renderrun'),
    ]

    operations = [
        migrations.RenameField(model_name='job', old_name='render', new_name='clip_video'),
        migrations.AlterField(
            model_name='job',
            name='clip_video',
            field=models.CharField(choices=[('none', 'None'), ('preview', 'Preview'), ('full', 'Full')], default='preview', max_length=8),
        ),
        migrations.RenameField(model_name='clip', old_name='render_status', new_name='full_render_status'),
        migrations.RenameField(model_name='clip', old_name='render_error', new_name='full_render_error'),
        migrations.RenameField(model_name='clip', old_name='render_requested_at', new_name='full_render_requested_at'),
        migrations.RenameModel(old_name='RenderRun', new_name='FullRender'),
        migrations.AlterField(
            model_name='fullrender',
            name='clip',
            field=models.OneToOneField(on_delete=models.deletion.CASCADE, primary_key=True, related_name='full_render', serialize=False, to='clips.clip'),
        ),
    ]

from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from .models import ApiKey, Plan, Team
        from .services import api_keys_changed

        def changed(sender, **kwargs):
            api_keys_changed()

        for model in (ApiKey, Team, Plan):
            post_save.connect(changed, sender=model, weak=False, dispatch_uid=f"keys-{model}")
            post_delete.connect(changed, sender=model, weak=False, dispatch_uid=f"keys-d-{model}")

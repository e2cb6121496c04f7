from django.apps import AppConfig


class BrandkitsConfig(AppConfig):
    name = "brandkits"
    default_auto_field = "django.db.models.BigAutoField"

from django.apps import AppConfig


class ChoppityConfig(AppConfig):
    name = "choppity"
    verbose_name = "Choppity-compatible API"

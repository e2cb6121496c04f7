from django.apps import AppConfig


class ClypaiConfig(AppConfig):
    name = "clypai"
    verbose_name = "ClypAI"

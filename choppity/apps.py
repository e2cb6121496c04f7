from django.apps import AppConfig


class ChoppityConfig(AppConfig):
    name = "choppity"
    verbose_name = "Choppity-compatible API"

    def ready(self):
        # Job and render webhook events, also in this API's words (choppity/events.py).
        from . import events

        events.register()

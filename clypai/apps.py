from django.apps import AppConfig


class ClypaiConfig(AppConfig):
    name = "clypai"
    verbose_name = "ClypAI"

    def ready(self):
        from clypai.observability import install_record_factory

        # Every log record carries the request id, clip id, job id and team bound now.
        install_record_factory()

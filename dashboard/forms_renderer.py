"""The form renderer: Django's templates, with the dashboard's field group (its labels
carry no trailing colon, so a field's accessible name is exactly its label)."""

from django.forms.renderers import TemplatesSetting


class DashboardFormRenderer(TemplatesSetting):
    field_template_name = "dashboard/forms/field.html"

"""The dashboard's forms: what a page asks for, validated in shape only; the services
decide the rest (and their errors land on the field they name)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm

from clips.pipeline.captions import CAPTION_FONTS
from clips.platforms import ASPECT_RATIOS, EXPORT_FORMATS, EXPORT_QUALITIES
from clips.services import LAYOUTS
from clypai.api.errors import ApiError
from clypai.lib.languages import WHISPER_LANGUAGES
from webhooks.models import FORMAT_EVENT_TYPES, FORMATS

# The languages the form offers by name (Whisper knows more; the API takes them all).
LANGUAGE_NAMES = {
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "pl": "Polish",
    "sv": "Swedish",
    "tr": "Turkish",
    "ru": "Russian",
    "uk": "Ukrainian",
    "ar": "Arabic",
    "hi": "Hindi",
    "ja": "Japanese",
    "ko": "Korean",
    "zh": "Chinese",
}
assert set(LANGUAGE_NAMES) <= WHISPER_LANGUAGES

LAYOUT_NAMES = {
    "auto": "Automatic",
    "fill": "Fill the frame",
    "fit": "Fit the picture",
    "split": "Split screen",
}
assert set(LAYOUT_NAMES) == set(LAYOUTS)

TARGET_LENGTHS = [("", "Automatic"), ("15", "About 15 s"), ("30", "About 30 s")]
TARGET_LENGTHS += [("60", "About 60 s"), ("90", "About 90 s")]


def add_service_error(form: forms.Form, exc: ApiError, fields: dict[str, str]) -> None:
    """Put a service's error on the form field it names (`fields` maps the service's
    field names to the form's), or on the form as a whole."""
    field = fields.get(getattr(exc, "field", None) or "")
    form.add_error(field if field in form.fields else None, exc.message)


class EmailAuthenticationForm(AuthenticationForm):
    """Sign in with the e-mail address (a dashboard user's username is their e-mail)."""

    username = forms.CharField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That e-mail address and password do not match an account. "
        "Check both and try again.",
    }

    def clean_username(self):
        return (self.cleaned_data.get("username") or "").strip().lower()


class NewClipsForm(forms.Form):
    video_file = forms.FileField(label="Video file", required=False)
    video_url = forms.URLField(
        label="Video URL",
        required=False,
        assume_scheme="https",
        max_length=2048,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/talk.mp4"}),
    )
    # A presigned upload's id (S3): the browser PUT the file there itself.
    upload_id = forms.CharField(required=False, widget=forms.HiddenInput, max_length=64)
    aspect_ratio = forms.ChoiceField(
        label="Aspect ratio", choices=[(a, a) for a in ASPECT_RATIOS], initial="9:16"
    )
    project = forms.ModelChoiceField(label="Project", queryset=None, empty_label=None)
    criteria = forms.CharField(
        label="Criteria",
        required=False,
        max_length=1000,
        widget=forms.TextInput(attrs={"placeholder": "e.g. funny moments, key insights"}),
    )
    target_length = forms.TypedChoiceField(
        label="Target length",
        choices=TARGET_LENGTHS,
        coerce=float,
        empty_value=None,
        required=False,
    )
    language = forms.ChoiceField(
        label="Language",
        required=False,
        choices=[("", "Auto-detect"), *sorted(LANGUAGE_NAMES.items(), key=lambda i: i[1])],
    )
    brand_kit = forms.ModelChoiceField(
        label="Brand kit", queryset=None, required=False, empty_label="None"
    )
    captions = forms.BooleanField(label="Captions", required=False, initial=True)
    layout = forms.ChoiceField(label="Layout", choices=list(LAYOUT_NAMES.items()), initial="auto")

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = team.projects.order_by("-is_default", "name")
        self.fields["brand_kit"].queryset = team.brand_kits.order_by("-is_default", "name")
        default_kit = team.brand_kits.filter(is_default=True).first()
        if default_kit is not None:
            self.fields["brand_kit"].initial = default_kit.pk
        default_project = team.projects.filter(is_default=True).first()
        if default_project is not None:
            self.fields["project"].initial = default_project.pk

    def clean(self):
        data = super().clean()
        given = [
            bool(data.get("video_file")),
            bool(data.get("video_url")),
            bool(data.get("upload_id")),
        ]
        if sum(given) == 0:
            raise forms.ValidationError("Choose a video file or give a video URL.")
        if sum(given) > 1:
            raise forms.ValidationError("Choose a video file or give a video URL, not both.")
        upload = data.get("video_file")
        if upload is not None and upload.size == 0:
            self.add_error("video_file", "The file is empty.")
        return data


class ClipEditForm(forms.Form):
    start = forms.FloatField(
        label="Start", min_value=0, widget=forms.NumberInput(attrs={"step": "0.01"})
    )
    end = forms.FloatField(
        label="End", min_value=0, widget=forms.NumberInput(attrs={"step": "0.01"})
    )
    layout = forms.ChoiceField(label="Layout", choices=list(LAYOUT_NAMES.items()))
    brand_kit = forms.ModelChoiceField(
        label="Brand kit", queryset=None, required=False, empty_label="None"
    )
    captions = forms.BooleanField(label="Captions", required=False)

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["brand_kit"].queryset = team.brand_kits.order_by("name")

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start is not None and end is not None and end <= start:
            self.add_error("end", "End must come after Start.")
        return data


# The export formats as the Format select names them: videos, then timelines (a zip for
# an editor: the timeline, the SRT and the source).
FORMAT_LABELS = {
    "mp4": "MP4 video",
    "mov": "MOV video",
    "webm": "WebM video",
    "otio": "OpenTimelineIO timeline (zip)",
    "fcpxml": "Final Cut Pro XML timeline (zip)",
    "edl": "EDL timeline, CMX 3600 (zip)",
}


class ExportForm(forms.Form):
    format = forms.ChoiceField(
        label="Format",
        choices=[(f, FORMAT_LABELS.get(f, f)) for f in EXPORT_FORMATS],
        help_text="A timeline opens in your editor: the clip's cut of the source, its "
        "reframing and captions, with the source media, in one zip.",
    )
    quality = forms.ChoiceField(
        label="Quality", choices=[(q, q) for q in EXPORT_QUALITIES], initial="high"
    )
    burn_captions = forms.BooleanField(label="Burn captions", required=False, initial=True)


class ApiKeyForm(forms.Form):
    name = forms.CharField(label="Name", max_length=120)


HEX = r"^#[0-9A-Fa-f]{6}$"
POSITIONS = [("bottom", "Bottom"), ("middle", "Middle"), ("top", "Top")]
FONTS = [(family, family) for family in CAPTION_FONTS]


def _color(label: str, initial: str) -> forms.RegexField:
    return forms.RegexField(
        label=label,
        regex=HEX,
        initial=initial,
        error_messages={"invalid": "Give a colour as #RRGGBB."},
        widget=forms.TextInput(attrs={"type": "color"}),
    )


def _offered_family(kit, family) -> str:
    if family in CAPTION_FONTS or (kit.font_file and family and family == kit.font_family):
        return family
    return "DejaVu Sans"


class BrandKitForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200)
    logo = forms.FileField(
        label="Logo",
        required=False,
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
    )
    primary_color = _color("Primary colour", "#FFFFFF")
    accent_color = _color("Accent colour", "#FFD60A")
    font_family = forms.ChoiceField(label="Caption font", choices=FONTS)
    font = forms.FileField(
        label="Caption font file",
        required=False,
        help_text="A .ttf or .otf font of your own: it becomes the caption font.",
        widget=forms.FileInput(attrs={"accept": ".ttf,.otf,font/ttf,font/otf"}),
    )
    font_size = forms.IntegerField(label="Caption size", min_value=16, max_value=160, initial=64)
    text_color = _color("Caption colour", "#FFFFFF")
    highlight_color = _color("Highlight colour", "#FFD60A")
    outline_color = _color("Outline colour", "#000000")
    position = forms.ChoiceField(label="Caption position", choices=POSITIONS)
    uppercase = forms.BooleanField(label="Uppercase captions", required=False)
    box = forms.BooleanField(label="Box behind captions", required=False)
    is_default = forms.BooleanField(label="Default brand kit", required=False)

    def __init__(self, *args, kit=None, **kwargs):
        super().__init__(*args, **kwargs)
        # The kit's own uploaded font is a choice too. No other family is: a kit whose
        # stored family is neither (written around the service) is drawn, shown and
        # saved with the default font.
        if kit is not None and kit.font_file and kit.font_family:
            own = (kit.font_family, f"{kit.font_family} (uploaded)")
            self.fields["font_family"].choices = [
                *[c for c in FONTS if c[0] != kit.font_family],
                own,
            ]

    def clean_font(self):
        font = self.cleaned_data.get("font")
        if font and font.size > settings.CLYPAI_MAX_FONT_BYTES:
            limit = settings.CLYPAI_MAX_FONT_BYTES // 1024**2
            raise forms.ValidationError(f"The font file is larger than {limit} MB.")
        return font

    @classmethod
    def initial_for(cls, kit) -> dict:
        style = kit.effective_caption_style
        return {
            "name": kit.name,
            "primary_color": kit.primary_color[:7],
            "accent_color": kit.accent_color[:7],
            "font_family": _offered_family(kit, style.get("fontFamily")),
            "font_size": style.get("fontSize") or 64,
            "text_color": (style.get("textColor") or "#FFFFFF")[:7],
            "highlight_color": (style.get("highlightColor") or kit.accent_color)[:7],
            "outline_color": (style.get("outlineColor") or "#000000")[:7],
            "position": style.get("position") or "bottom",
            "uppercase": bool(style.get("uppercase")),
            "box": bool(style.get("box")),
            "is_default": kit.is_default,
        }

    def service_data(self) -> dict:
        """The brand kit service's data (the /v1/ API's names)."""
        d = self.cleaned_data
        return {
            "name": d["name"],
            "primaryColor": d["primary_color"].upper(),
            "accentColor": d["accent_color"].upper(),
            "captionStyle": {
                "fontFamily": d["font_family"],
                "fontSize": d["font_size"],
                "textColor": d["text_color"].upper(),
                "highlightColor": d["highlight_color"].upper(),
                "outlineColor": d["outline_color"].upper(),
                "position": d["position"],
                "uppercase": d["uppercase"],
                "box": d["box"],
            },
        }


class ProjectForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200)
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ClipMoveForm(forms.Form):
    """Move a clip to another of the team's projects (a project of another team is not
    one of the choices: the view answers it 404)."""

    project = forms.ModelChoiceField(label="Project", queryset=None, empty_label=None)

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = team.projects.order_by("-is_default", "name")


class TeamSwitchForm(forms.Form):
    team = forms.ChoiceField(label="Team")
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, memberships, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [(m.team_id, m.team.name) for m in memberships]


# Every event some format sends, in the order /v1 lists them (Choppity's render.error
# last); the service says which ones the chosen format sends.
_ALL_EVENT_TYPES = list(dict.fromkeys(e for f in FORMATS for e in FORMAT_EVENT_TYPES[f]))
WEBHOOK_FORMAT_NAMES = {
    "clypai": "ClypAI (/v1 words)",
    "choppity": "Choppity (/choppity/v1 words)",
}
assert set(WEBHOOK_FORMAT_NAMES) == set(FORMATS)


class WebhookForm(forms.Form):
    url = forms.URLField(label="Endpoint URL", max_length=2048, assume_scheme="https")
    description = forms.CharField(label="Description", max_length=500, required=False)
    format = forms.ChoiceField(
        label="Format",
        choices=list(WEBHOOK_FORMAT_NAMES.items()),
        initial="clypai",
        help_text="The words the events are written in: the /v1 API's, or the Choppity API's.",
    )
    events = forms.MultipleChoiceField(
        label="Events",
        choices=[("*", "All events"), *[(e, e) for e in _ALL_EVENT_TYPES]],
        widget=forms.CheckboxSelectMultiple,
        initial=["*"],
        help_text="The Choppity format sends " + ", ".join(FORMAT_EVENT_TYPES["choppity"]) + ".",
    )


class WebhookEditForm(WebhookForm):
    enabled = forms.BooleanField(label="Enabled", required=False)

    @classmethod
    def initial_for(cls, endpoint) -> dict:
        return {
            "url": endpoint.url,
            "description": endpoint.description,
            "format": endpoint.format,
            "events": list(endpoint.events),
            "enabled": endpoint.enabled,
        }

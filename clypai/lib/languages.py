"""Source languages: the ISO 639-1 codes that Whisper transcribes."""

# Whisper's language list, restricted to two-letter ISO 639-1 codes. Whisper spells
# Javanese "jw"; ISO spells it "jv", which is what the API takes.
WHISPER_LANGUAGES = frozenset(
    """
    af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha
    he hi hr ht hu hy id is it ja jv ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms
    mt my ne nl nn no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th
    tk tl tr tt uk ur uz vi yi yo zh
    """.split()
)


def is_supported_language(code: str) -> bool:
    return code in WHISPER_LANGUAGES


def whisper_language(code: str) -> str:
    """The code Whisper itself uses for an ISO 639-1 code."""
    return "jw" if code == "jv" else code

"""The ClypAI document, played against the live test server over real HTTP.

An independent client: the document's own curl examples, taken from
../shared/seeds/clypai-clips-api.txt and run through bash as a reader would paste them,
with only the base URL, YOUR_API_KEY and the example's ids and source URL filled in.
Each answer is held to the document's example answer: its keys, its values where they
are the request's, and its error objects exactly.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from django.core.files import File

from clips.models import Clip, Source
from projects.services import default_project
from tests.factories import ProjectFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SEED = Path(__file__).resolve().parents[2].parent / "shared" / "seeds" / "clypai-clips-api.txt"
DOC_BASE = "https://api.clypai.com/v1"
DOC_PROJECT, DOC_CLIP = "proj_a1b2c3d4e5", "clip_xyz789abc"
DOC_SOURCE_URL = "https://example.com/video.mp4"
VIDEO = "talking_head/grid_concat_11clips_33s.mp4"


def document() -> tuple[list[str], str]:
    if not SEED.is_file():
        pytest.fail(f"the ClypAI document is not at {SEED}")
    text = SEED.read_text()
    curls = re.findall(
        r"curl .*?YOUR_API_KEY\"(?: \\\n-H \"Content-Type: application/json\" \\\n-d '.*?')?",
        text,
        re.S,
    )
    assert len(curls) == 5, "the document's examples changed"
    return curls, text


def example_after(text: str, heading: str) -> dict:
    """The first JSON example after `heading` in the document."""
    start = text.index(heading)
    begin = text.index("{", start)
    depth = 0
    for end in range(begin, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            return json.loads(text[begin : end + 1])
    raise AssertionError(f"no example after {heading!r}")


def curl(command: str, base: str, key: str, **replace) -> tuple[int, dict]:
    script = command.replace(DOC_BASE, base).replace("YOUR_API_KEY", key)
    for old, new in replace.items():
        script = script.replace(old, new)
    script = (
        "curl() { command curl --silent --show-error --write-out '\\n%{http_code}' \"$@\"; }\n"
        + script
    )
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    body, _, code = done.stdout.rpartition("\n")
    return int(code), json.loads(body)


@pytest.fixture
def media_server(shared_media, settings):
    handler = functools.partial(_Quiet, directory=str(shared_media))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    settings.CLYPAI_SOURCE_CHECK_TIMEOUT_SECONDS = 5.0
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def completed_clip(team, shared_media) -> Clip:
    """A completed 4 s clip of a real source, as processing leaves it."""
    video = shared_media / VIDEO
    data = video.read_bytes()
    source = Source(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    with open(video, "rb") as fh:
        source.file.save("sources/grid.mp4", File(fh), save=False)
    source.save()
    return Clip.objects.create(
        team=team,
        project=default_project(team=team),
        source=source,
        status="completed",
        start_time=3.0,
        end_time=7.0,
        duration=4.0,
        name="Grid",
        words=[],
        metadata={"hooks": [], "highlights": [], "reason": "test"},
    )


def test_the_documents_curl_examples_answer_as_the_document_shows(
    live_server, caller, team, settings, media_server, shared_media, tmp_path
):
    settings.CLYPAI_WORK_DIR = tmp_path / "work"
    settings.CLYPAI_PUBLIC_URL = live_server.url
    (create, listing, get, export, delete), text = document()
    base, key = f"{live_server.url}/v1", caller.key
    project = ProjectFactory(team=team)
    source_url = f"{media_server}/{VIDEO}"

    # Generate Clip: 201... the document's response, with status pending.
    status, created = curl(
        create, base, key, **{DOC_PROJECT: project.pk, DOC_SOURCE_URL: source_url}
    )
    assert status == 201, created
    expected = example_after(text, "The created clip object with status pending")
    assert created["success"] is True
    assert set(expected["data"]) <= set(created["data"])
    for name in ("name", "status", "config"):
        want = expected["data"][name]
        got = created["data"][name]
        assert (got if name != "config" else {k: got[k] for k in want}) == want, name
    assert created["data"]["projectId"] == project.pk
    assert created["data"]["sourceVideoUrl"] == source_url
    clip_id = created["data"]["id"]

    # List Clips, filtered by its project.
    status, listed = curl(listing, base, key, **{DOC_PROJECT: project.pk})
    assert status == 200, listed
    expected = example_after(text, "Sort direction: asc or desc")
    assert set(listed) == set(expected) and set(listed["pagination"]) == {"hasMore", "nextCursor"}
    assert [clip["id"] for clip in listed["data"]] == [clip_id]
    assert set(expected["data"][0]) <= set(listed["data"][0])

    # Get Clip.
    status, fetched = curl(get, base, key, **{DOC_CLIP: clip_id})
    assert status == 200 and fetched["data"]["id"] == clip_id, fetched
    expected = example_after(text, "The unique identifier of the clip\nResponse")
    assert set(expected["data"]) <= set(fetched["data"])

    # Export Clip, of a completed clip: the document's answer, a link that works.
    settings.CLYPAI_JOBS_INLINE = True
    ready = completed_clip(team, shared_media)
    status, exported = curl(export, base, key, **{DOC_CLIP: ready.pk})
    assert status == 200, exported
    expected = example_after(text, "Burn captions into video (if available)")
    assert set(expected["data"]) <= set(exported["data"])
    assert (exported["data"]["format"], exported["data"]["quality"]) == ("mp4", "high")
    assert exported["data"]["fileSize"] > 0
    assert exported["data"]["exportUrl"].startswith(live_server.url)
    file = requests.get(exported["data"]["exportUrl"], timeout=60)
    assert file.status_code == 200 and file.content[4:8] == b"ftyp"

    # Delete Clip: exactly the document's answer.
    status, deleted = curl(delete, base, key, **{DOC_CLIP: clip_id})
    assert status == 200
    assert deleted == {"success": True, "data": {"id": clip_id, "deleted": True}}

    # Invalid Source Video: exactly the document's error, for a URL that is not there.
    status, refused = curl(
        create,
        base,
        key,
        **{DOC_PROJECT: project.pk, DOC_SOURCE_URL: f"{media_server}/missing.mp4"},
    )
    assert status == 400
    assert refused == example_after(text, "Invalid Source Video")

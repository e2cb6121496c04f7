"""The Choppity document, played against the live test server over real HTTP.

Its own curl and fetch examples are taken from ../shared/seeds/choppity-clips-api.txt
and run as written (curl through bash, fetch through Node), with only the base URL, the
example's source URL and upload id, and $CHOPPITY_KEY / $CLIP_ID filled in. Between
them, `requests` polls as a client would, and RQ burst workers in subprocesses do the
work: the analysis queue first (the job is then `processing` with its clips listed and
their previews rendering), then the render queue (`done`, every clip with a preview_url),
then a full render. Last, every row of the document's error table.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid

import pytest
import requests

from clips.models import Clip, Job
from clypai.lib.ffmpeg import ffprobe_json
from tests.choppity.conftest import SEED, VIDEO, make_job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DOC_BASE = "https://api2.choppity.com/v1"
DOC_SOURCE_URL = "https://example.com/podcast.mp4"
DOC_UPLOAD_ID = "9f8e7d6c-5b4a-3c2b-1a09-0f8e7d6c5b4a"


def document_examples() -> tuple[list[str], str]:
    """The document's curl commands (in order) and its fetch example."""
    if not SEED.is_file():
        pytest.fail(f"the Choppity document is not at {SEED}")
    text = SEED.read_text()
    curls = re.findall(r"curl -X POST \S+(?: \\ -H \"[^\"]*\")*(?: \\ -d '[^']*')?", text)
    fetch = re.search(
        r"const res = await fetch\(.*?const \{ job_id \} = await res\.json\(\);", text, re.S
    )
    assert len(curls) == 3 and fetch, "the document's examples changed"
    return curls, fetch.group(0)


class Client:
    """What a Choppity client does between the examples: plain HTTP with `Key <key>`."""

    def __init__(self, base: str, key: str):
        self.base, self.key = base, key
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Key {key}"

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.base + path, timeout=30)

    def job(self, job_id: str) -> dict:
        response = self.get(f"/clips/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def curl(self, command: str, **env) -> tuple[int, dict]:
        """Run one of the document's curl commands through bash, as a reader would paste it."""
        script = (
            "curl() { command curl --silent --show-error --write-out '\\n%{http_code}' \"$@\"; }\n"
            + command.replace(DOC_BASE, self.base).replace(" \\ ", " \\\n")
        )
        done = subprocess.run(
            ["bash", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "CHOPPITY_KEY": self.key, **env},
        )
        assert done.returncode == 0, done.stderr
        body, _, code = done.stdout.rpartition("\n")
        return int(code), json.loads(body)

    def fetch(self, example: str, **replace) -> tuple[int, str]:
        """Run the document's fetch example in Node; its status and the job_id it reads."""
        node = shutil.which("node")
        assert node, "Node is needed to run the document's fetch example"
        code = example.replace(DOC_BASE, self.base)
        for old, new in replace.items():
            code = code.replace(old, new)
        script = (
            f"(async () => {{ {code}\n"
            "process.stdout.write(JSON.stringify({status: res.status, job_id})); })()"
            ".catch((e) => { console.error(e); process.exit(1); });"
        )
        done = subprocess.run(
            [node, "-e", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "CHOPPITY_KEY": self.key},
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        return result["status"], result["job_id"]


def assert_mp4(content: bytes, *, duration: float, tmp_path, name: str) -> dict:
    assert content[4:8] == b"ftyp", content[:16]
    path = tmp_path / name
    path.write_bytes(content)
    probe = ffprobe_json(path)
    assert any(s["codec_type"] == "video" for s in probe["streams"]), probe
    assert float(probe["format"]["duration"]) == pytest.approx(duration, abs=1.0)
    return probe


def test_the_documents_examples_run_through_to_previews_and_a_full_render(
    live_server,
    caller,
    other_caller,
    settings,
    media_server,
    burst_worker,
    rq_queues,
    shared_media,
    tmp_path,
):
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    settings.CLYPAI_JOB_CLIP_COUNT = 1  # one clip a job keeps this test near a minute
    client = Client(f"{live_server.url}/choppity/v1", caller.key)
    curl_url, curl_upload, curl_render = document_examples()[0]
    fetch_example = document_examples()[1]

    # A real talking-head video, through /choppity/v1/uploads.
    video = shared_media / VIDEO
    with open(video, "rb") as fh:
        uploaded = client.session.post(
            f"{client.base}/uploads", timeout=60, files={"file": (video.name, fh, "video/mp4")}
        )
    assert uploaded.status_code == 201, uploaded.text
    upload_id = uploaded.json()["upload_id"]

    # The document's second curl: a job from that upload.
    status, created = client.curl(curl_upload.replace(DOC_UPLOAD_ID, upload_id))
    assert status == 202, created
    assert set(created) == {"job_id", "status", "created_at"} and created["status"] == "queued"
    upload_job = created["job_id"]
    # Its first curl and its fetch example: jobs from a URL (served here on loopback).
    source_url = f"{media_server}/{VIDEO}"
    status, created = client.curl(curl_url.replace(DOC_SOURCE_URL, source_url))
    assert status == 202 and created["status"] == "queued", created
    url_job = created["job_id"]
    status, fetch_job = client.fetch(fetch_example, **{DOC_SOURCE_URL: source_url})
    assert status == 202 and uuid.UUID(fetch_job)
    jobs = [upload_job, url_job, fetch_job]

    for job_id in jobs:
        polled = client.job(job_id)
        assert (polled["job_id"], polled["status"], polled["clips"]) == (job_id, "queued", [])
    assert Job.objects.get(pk=url_job).language == "en"  # as the first curl asked

    # Analysis: clips are selected, previews are queued but not rendered yet.
    burst_worker("analysis")
    for job_id in jobs:
        polled = client.job(job_id)
        assert polled["status"] == "processing", polled
        assert polled["clips"], polled
        for clip in polled["clips"]:
            assert set(clip) == {"id", "title", "duration", "score"}  # no preview_url yet
            assert clip["title"] and 0 <= clip["score"] <= 1
            assert clip["duration"] == round(clip["duration"], 2) and 0 < clip["duration"] <= 34

    # The render queue: every preview, and then the job is done.
    burst_worker("render")
    done = {job_id: client.job(job_id) for job_id in jobs}
    for job_id, polled in done.items():
        assert polled["status"] == "done", (
            polled,
            list(Clip.objects.filter(job_id=job_id).values("status", "error")),
        )
        for clip in polled["clips"]:
            preview = requests.get(clip["preview_url"], timeout=30)  # no credentials: signed
            assert preview.status_code == 200
            assert_mp4(
                preview.content,
                duration=clip["duration"],
                tmp_path=tmp_path,
                name=f"preview-{clip['id']}.mp4",
            )
    # Another team sees none of it.
    other = Client(client.base, other_caller.key)
    assert other.get(f"/clips/{upload_job}").status_code == 404

    # The document's third curl: a full render of a clip picked from the previews (the
    # shortest, as full renders cost render minutes).
    best = min(
        (clip for polled in done.values() for clip in polled["clips"]),
        key=lambda clip: clip["duration"],
    )
    status, render = client.curl(curl_render, CLIP_ID=best["id"])
    assert status == 202, render
    assert (render["render_id"], render["status"]) == (best["id"], "queued")
    assert client.get(f"/renders/{best['id']}").json()["status"] == "queued"
    burst_worker("render")
    finished = client.get(f"/renders/{best['id']}").json()
    assert finished["status"] == "done", finished
    output = requests.get(finished["output_url"], timeout=30)
    assert output.status_code == 200
    assert_mp4(output.content, duration=best["duration"], tmp_path=tmp_path, name="full.mp4")
    assert other.get(f"/renders/{best['id']}").status_code == 404


def test_every_row_of_the_error_table_over_http(live_server, caller, other_caller):
    base = f"{live_server.url}/choppity/v1"
    key = {"Authorization": f"Key {caller.key}"}

    def expect(response, status_code, code):
        assert response.status_code == status_code, response.text
        assert response.headers["Content-Type"] == "application/json"
        body = response.json()
        assert set(body) == {"error"} and body["error"]["code"] == code, body
        return body["error"]

    def create(body, headers=key):
        return requests.post(f"{base}/clips", json=body, headers=headers, timeout=30)

    # BAD_REQUEST: missing source, both url and upload_id, malformed URL, invalid language.
    assert expect(create({"criteria": "funny moments"}), 400, "BAD_REQUEST")["field"] == "source"
    both = {"url": DOC_SOURCE_URL, "upload_id": DOC_UPLOAD_ID}
    assert expect(create({"source": both}), 400, "BAD_REQUEST")["field"] == "source"
    malformed = {"source": {"url": "htp:/example.com podcast.mp4"}}
    assert expect(create(malformed), 400, "BAD_REQUEST")["field"] == "source.url"
    bad_language = {"source": {"url": DOC_SOURCE_URL}, "language": "eng"}
    assert expect(create(bad_language), 400, "BAD_REQUEST")["field"] == "language"

    # UNAUTHORIZED: a missing or invalid credential.
    ok = {"source": {"url": DOC_SOURCE_URL}}
    expect(create(ok, headers={}), 401, "UNAUTHORIZED")
    expect(create(ok, headers={"Authorization": "Key clyp_not_a_key"}), 401, "UNAUTHORIZED")
    expect(create(ok, headers={"Authorization": "Bearer not.a.jwt"}), 401, "UNAUTHORIZED")

    # NOT_FOUND: a jobId or clipId that doesn't exist on your team.
    theirs = make_job(other_caller.team, status=Job.Status.DONE, clips=1, previews=1)
    their_clip = theirs.clips.get().uuid
    for job_id in (theirs.pk, uuid.uuid4(), "not-an-id"):
        expect(requests.get(f"{base}/clips/{job_id}", headers=key, timeout=30), 404, "NOT_FOUND")
    for clip_id in (their_clip, uuid.uuid4(), "not-an-id"):
        expect(
            requests.post(f"{base}/clips/{clip_id}/renders", headers=key, timeout=30),
            404,
            "NOT_FOUND",
        )
    assert not Job.objects.filter(team=caller.team).exists()

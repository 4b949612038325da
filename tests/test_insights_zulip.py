"""The insights chart on Zulip: uploaded through ``POST /user_uploads`` and shown inline.

Contract tests hold the fake's new endpoint to ../shared/zulip-api/zulip.yaml (the
``/user_uploads`` entry: a multipart/form-data body with the file; the answer's only
key beside result and msg is ``uri`` at feature level 266); then a running ``cafebot
run`` is asked for ``insights``, and the fake checks the upload and that the reply links
it the way Zulip shows an image inline.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from cafebot.bot.app import App
from cafebot.core.chat import SendFailed
from cafebot.core.config import ZulipSettings
from cafebot.edge.direct import DirectChat
from cafebot.notes.archive import import_archive, parse_archive
from tests import zulipspec
from tests.fakezulip import FakeZulip, Org, User
from tests.harness import JUNE_1
from tests.test_insights import ARCHIVE_2030, ARCHIVE_2031
from tests.test_zulip_transport import Running, make_app

PNG = b"\x89PNG\r\n\x1a\n"
URI_RE = re.compile(r"^/user_uploads/\d+/[0-9a-f]{2}/[0-9a-f]{24}/[\w.-]+$")


def upload(
    fake: FakeZulip, user: User, files: list[tuple[str, tuple[str, bytes]]], **data: str
) -> requests.Response:
    """A multipart POST /user_uploads as the zulip client sends it (the part named after
    the file), with HTTP basic auth."""
    return requests.post(
        f"{fake.url}/api/v1/user_uploads",
        auth=(user.email, user.api_key),
        files=files,
        data=data,
        timeout=10,
    )


# ---------------------------------------------------------------- the fake, held to Zulip


def test_an_upload_answers_its_uri_as_zulip_yaml_describes(org: Org) -> None:
    answer = upload(org.fake, org.ada, [("chart.png", ("chart.png", PNG + b"data"))])
    assert answer.status_code == 200
    body = answer.json()
    zulipspec.validate("post", "/user_uploads", 200, body)
    assert set(body) == {"result", "msg", "uri"}  # level 266: no url, no filename yet
    assert URI_RE.match(body["uri"]) and body["uri"].endswith("/chart.png")
    stored = org.fake.uploads[body["uri"]]
    assert (stored.owner, stored.file.filename, stored.file.data) == (
        org.ada.id,
        "chart.png",
        PNG + b"data",
    )
    (request,) = org.fake.requests_to("user_uploads", "POST")
    assert [f.filename for f in request.files] == ["chart.png"]


def test_file_names_are_made_safe_for_the_address(org: Org) -> None:
    body = upload(org.fake, org.ada, [("f", ("my chart (final).png", PNG))]).json()
    zulipspec.validate("post", "/user_uploads", 200, body)
    assert body["uri"].endswith("/my-chart-final-.png")


@pytest.mark.parametrize(
    ("files", "msg"),
    [
        pytest.param([], "You must specify a file to upload", id="no-file"),
        pytest.param(
            [("a.png", ("a.png", PNG)), ("b.png", ("b.png", PNG))],
            "You may only upload one file at a time",
            id="two-files",
        ),
    ],
)
def test_refused_uploads_are_zulips_common_errors(
    org: Org, files: list[tuple[str, tuple[str, bytes]]], msg: str
) -> None:
    answer = upload(org.fake, org.ada, files, note="a form field, not a file")
    assert answer.status_code == 400
    body = answer.json()
    zulipspec.validate("post", "/user_uploads", 400, body)
    assert body == {"result": "error", "msg": msg, "code": "BAD_REQUEST"}


def test_a_file_over_the_servers_limit_is_refused(org: Org) -> None:
    org.fake.max_file_upload_mib = 1
    answer = upload(org.fake, org.ada, [("big.png", ("big.png", b"x" * (1024 * 1024 + 1)))])
    assert answer.status_code == 400
    zulipspec.validate("post", "/user_uploads", 400, answer.json())
    assert "larger than the allowed limit of 1 MiB" in answer.json()["msg"]
    assert org.fake.uploads == {}


def test_an_upload_needs_the_api_key(org: Org) -> None:
    answer = requests.post(
        f"{org.fake.url}/api/v1/user_uploads",
        auth=(org.ada.email, "wrong"),
        files=[("a.png", ("a.png", PNG))],
        timeout=10,
    )
    assert answer.status_code == 401
    zulipspec.validate("post", "/user_uploads", 401, answer.json())
    zulipspec.assert_shape(answer.json(), zulipspec.recorded("wrong api key"), 401)


def test_inline_images_are_uploads_of_the_sender_linked_by_their_path(org: Org) -> None:
    mine = upload(org.fake, org.ada, [("a.png", ("a.png", PNG))]).json()["uri"]
    theirs = upload(org.fake, org.bob, [("b.png", ("b.png", PNG))]).json()["uri"]
    text = upload(org.fake, org.ada, [("n.txt", ("n.txt", b"notes"))]).json()["uri"]
    content = (
        f"[a.png]({mine}) [b.png]({theirs}) [n.txt]({text}) [again]({org.fake.url}{mine}) {mine}"
    )
    message_id = org.fake.post(org.ada, org.stream, org.topic, content)
    shown = [u.path for u in org.fake.inline_images(message_id)]
    # Bob's image is not Ada's to share; a text file is no image; a bare path is no link.
    assert shown == [mine, mine]


# ---------------------------------------------------------------- the bot


@pytest.fixture
def app(db_url: str, org: Org) -> Iterator[App]:
    app = make_app(db_url, org)
    for text in (ARCHIVE_2030, ARCHIVE_2031):
        with app.unit_of_work() as session:
            import_archive(session, app.settings.series[0], parse_archive(text), JUNE_1)
    yield app
    app.close()


def test_insights_uploads_the_chart_and_zulip_shows_it_inline(app: App, org: Org) -> None:
    running = Running(app).wait_ready()
    try:
        asked = org.command("insights")
        reply = org.fake.wait_for(lambda: org.replies()[-1:], what="the insights reply")[0]
    finally:
        running.stop()
    (request,) = org.fake.requests_to("user_uploads", "POST")
    assert request.status == 200
    zulipspec.validate("post", "/user_uploads", 200, request.answer)
    (file,) = request.files
    assert file.filename == "attendance.png" and file.data.startswith(PNG)
    uri = request.answer["uri"]
    assert f"[attendance.png]({uri})" in reply.content
    assert "8 meetings, 20 check-ins" in reply.content
    assert [u.path for u in org.fake.inline_images(reply.id)] == [uri]
    assert reply.stream == org.stream and reply.topic == org.topic
    assert asked < reply.id


def test_a_refused_upload_still_gets_the_summary(app: App, org: Org) -> None:
    org.fake.max_file_upload_mib = 0  # every file is too large
    running = Running(app).wait_ready()
    try:
        org.command("insights")
        reply = org.fake.wait_for(lambda: org.replies()[-1:], what="the insights reply")[0]
    finally:
        running.stop()
    assert "8 meetings, 20 check-ins" in reply.content
    assert "The attendance chart could not be uploaded this time." in reply.content
    assert "user_uploads" not in reply.content


def test_lapsed_goes_to_the_organiser_in_a_direct_message(app: App, org: Org) -> None:
    running = Running(app).wait_ready()
    try:
        org.command("insights lapsed", org.olga)
        dms = org.fake.wait_for(
            lambda: [m for m in org.replies() if m.stream is None], what="the direct message"
        )
        in_stream = org.fake.wait_for(
            lambda: [m for m in org.replies() if m.stream is not None], what="the stream reply"
        )
    finally:
        running.stop()
    (dm,) = dms
    assert dm.recipients - {org.bot.id} == {org.olga.id}  # Olga alone, with the bot
    assert "- Bob (@bob): 3 meetings, last on 2030-12-16" in dm.content
    assert all("Bob" not in m.content for m in in_stream)


def test_the_one_off_chat_uploads_too(org: Org) -> None:
    chat = DirectChat(ZulipSettings(site=org.fake.url, email=org.bot.email, key=org.bot.api_key))
    path = chat.upload("chart.png", PNG)
    assert URI_RE.match(path)
    assert org.fake.uploads[path].owner == org.bot.id
    org.fake.max_file_upload_mib = 0
    with pytest.raises(SendFailed, match="larger than the allowed limit"):
        chat.upload("chart.png", PNG)

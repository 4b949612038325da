"""Community insights, checked against counts made by hand on a small made-up archive.

The archive (:data:`ARCHIVE_2030`, :data:`ARCHIVE_2031`): eight meetings from September
2030 to May 2031, eight people. Who came when (a first visit in capitals):

    2030-09-16  ADA BOB CY          first 3, returning 0
    2030-10-21  Ada Bob DEE         first 1, returning 2
    2030-11-18  Ada EVE             first 1, returning 1   (Eve never comes back)
    2030-12-16  Ada Bob Dee         first 0, returning 3   (Bob's last visit: he lapses)
    2031-01-20  Ada FAY             first 1, returning 1
    2031-02-17  Ada Cy              first 0, returning 2   (Cy back after 5 months)
    2031-03-17  Ada GUS             first 1, returning 1
    2031-05-19  Ada HAL Fay         first 1, returning 2   (Fay back after 4 months)

Asked on 1 June 2031 (the harness' clock), the last 12 months hold all eight.
Retention, by hand: within 3 months, Ada and Bob of September's three (Cy came back
after 5), Dee of October's; not Eve, not Fay (4 months): 3 of the 6 whose three months
have passed, 2 (Gus, Hal) too recent to tell. Within 6 months: September's three, Dee;
not Eve: 4 of 5, 3 (Fay, Gus, Hal) to tell.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cafebot.insights import numbers
from cafebot.insights.commands import parse_period
from cafebot.insights.lapsed import lapsed
from cafebot.insights.numbers import Period
from cafebot.notes.archive import import_archive, parse_archive
from tests.harness import CAFE, JUNE_1, OLGA, Harness

ARCHIVE_2031 = """\
# 2031 Collaboration Cafe Notes Archive

## 2031-05-19

### Check-in :raising_hand:

- Ada / @ada / Harbour  Lab
- Hal / @hal / Independent
- Fay / @fay / harbour lab

## 2031-03-17

### Check-in :raising_hand:

- Ada / @ada / Harbour Lab
- Gus / @gus

## 2031-02-17

### Check-in :raising_hand:

- Ada / @ada / Harbour Lab
- Cy / @cy

## 2031-01-20

### Check-in :raising_hand:

- Ada / @ada
- Fay / @fay / Harbour Lab
"""

ARCHIVE_2030 = """\
# 2030 Collaboration Cafe Notes Archive

## 2030-12-16

### Check-in :raising_hand:

- Ada / @ada / Harbour Lab
- Bob / @bob / northfield university
- Dee / @dee / Northfield University

### Agenda :clock2:

- [name=Ada] (5 min): Release plans
- [name=Bob] (5 min): Docs sprint
- [name=Dee] (5 min): Governance

## 2030-11-18

### Check-in :raising_hand:

- Ada / @ada / HARBOUR LAB
- Eve / @eve / Fjord Data

## 2030-10-21

### Check-in :raising_hand:

- Ada / @ada / harbour lab
- Bob / @bob / Northfield University
- Dee / @dee / northfield university

### Agenda :clock2:

- [name=Bob] (10 min): Funding
    - **Decision** - apply in spring

## 2030-09-16

### Check-in :raising_hand:

- Ada / @ada / Harbour Lab
- Bob / @bob / Northfield University
- Cy / @cy

### Agenda :clock2:

- [name=Ada] (10 min): Welcome
    - Round of names
- [name=Cy] (5 min): Packaging
"""

DATES = [
    "2030-09-16",
    "2030-10-21",
    "2030-11-18",
    "2030-12-16",
    "2031-01-20",
    "2031-02-17",
    "2031-03-17",
    "2031-05-19",
]


def import_both(h: Harness) -> None:
    for text in (ARCHIVE_2030, ARCHIVE_2031):
        with h.app.unit_of_work() as session:
            import_archive(session, h.settings.series[0], parse_archive(text), JUNE_1)


@pytest.fixture
def h(db_url: str) -> Iterator[Harness]:
    harness = Harness(db_url)
    import_both(harness)
    yield harness
    harness.close()


def compute(h: Harness, period: Period | None = None) -> numbers.Insights:
    with h.app.unit_of_work() as session:
        return numbers.compute(
            session, h.settings.series[0], period or Period.last_months(JUNE_1.date()), JUNE_1
        )


# ---------------------------------------------------------------- the numbers


def test_attendance_first_timers_and_returning_per_meeting(h: Harness) -> None:
    found = compute(h)
    assert [m.date.isoformat() for m in found.meetings] == DATES
    assert [m.attendance for m in found.meetings] == [3, 3, 2, 3, 2, 2, 2, 3]
    assert [m.first_timers for m in found.meetings] == [3, 1, 1, 0, 1, 0, 1, 1]
    assert [m.returning for m in found.meetings] == [0, 2, 1, 3, 1, 2, 1, 2]
    assert (found.check_ins, found.people, found.first_timers) == (20, 8, 8)


def test_retention_within_3_and_6_months(h: Harness) -> None:
    found = compute(h)
    three, six = found.retention
    assert (three.months, three.returned, three.counted, three.to_tell) == (3, 3, 6, 2)
    assert (six.months, six.returned, six.counted, six.to_tell) == (6, 4, 5, 3)
    cohorts = {
        c.date.isoformat(): (c.newcomers, c.returned[3], c.returned[6]) for c in found.cohorts
    }
    assert cohorts == {
        "2030-09-16": (3, 2, 3),
        "2030-10-21": (1, 1, 1),
        "2030-11-18": (1, 0, 0),
        "2031-01-20": (1, 0, None),
        "2031-03-17": (1, None, None),
        "2031-05-19": (1, None, None),
    }


def test_organisations_are_one_whatever_their_letter_case(h: Harness) -> None:
    orgs = [(o.name, o.people, o.check_ins) for o in compute(h).organisations]
    assert orgs == [
        ("Harbour Lab", 2, 9),  # Ada 7 times (not in January), Fay twice; 6 spelt so
        ("Northfield University", 2, 5),  # Bob 3, Dee 2
        ("Fjord Data", 1, 1),
        ("Independent", 1, 1),
    ]


def test_agenda_items_proposed_and_discussed(h: Harness) -> None:
    found = compute(h)
    by_date = {m.date.isoformat(): (m.proposed, m.discussed, m.rolled_over) for m in found.meetings}
    assert by_date["2030-09-16"] == (2, 1, 0)  # "Welcome" has a note
    assert by_date["2030-10-21"] == (1, 1, 0)  # a decision
    assert by_date["2030-12-16"] == (3, 0, 0)
    assert (found.total("proposed"), found.total("discussed")) == (6, 2)


def test_a_shorter_period_counts_first_timers_over_all_history(h: Harness) -> None:
    found = compute(h, parse_period("2031", JUNE_1.date()))
    assert [m.date.isoformat() for m in found.meetings] == DATES[4:]
    # Cy in February came first in 2030: returning, not a first-timer.
    assert [m.first_timers for m in found.meetings] == [1, 0, 1, 1]
    assert found.people == 5  # Ada, Fay, Cy, Gus, Hal
    three, six = found.retention  # the 2031 cohorts: Fay (not back in 3), Gus and Hal
    assert (three.returned, three.counted, three.to_tell) == (0, 1, 2)
    assert (six.returned, six.counted, six.to_tell) == (0, 0, 3)


def test_lapsed_regulars(h: Harness) -> None:
    with h.app.unit_of_work() as session:
        series = h.settings.series[0]
        gone = lapsed(session, series, JUNE_1)
        later = lapsed(session, series, JUNE_1, months=6)
    # Bob came three times, last on 16 December: more than 3 months ago. Eve, Cy and Dee
    # came fewer than three times: no regulars. Ada was there in May.
    assert [(x.name, x.github, x.meetings, x.last_seen.isoformat()) for x in gone] == [
        ("Bob", "bob", 3, "2030-12-16")
    ]
    assert later == []  # December is within the last 6 months


@pytest.mark.parametrize(
    ("text", "since", "until", "label"),
    [
        pytest.param("", "2030-06-01", "2031-06-01", "the last 12 months", id="default"),
        pytest.param("6 months", "2030-12-01", "2031-06-01", "the last 6 months", id="months"),
        pytest.param("2y", "2029-06-01", "2031-06-01", "the last 24 months", id="years"),
        pytest.param("2030", "2030-01-01", "2030-12-31", "2030", id="year"),
        pytest.param("since 2030-05-01", "2030-05-01", None, "since 2030-05-01", id="since"),
        pytest.param("all", None, None, "all meetings", id="all"),
    ],
)
def test_periods(text: str, since: str | None, until: str | None, label: str) -> None:
    period = parse_period(text, JUNE_1.date())
    assert period.since == (dt.date.fromisoformat(since) if since else None)
    assert period.until == (dt.date.fromisoformat(until) if until else None)
    assert period.label == label


# ---------------------------------------------------------------- in chat


def test_insights_in_chat_posts_the_summary_and_the_chart(h: Harness) -> None:
    answer = h.send("insights")
    assert answer.reactions == []
    (reply,) = answer.replies
    assert "Collaboration Cafe: insights, the last 12 months (2030-06-01 to 2031-06-01)" in reply
    assert "8 meetings, 20 check-ins (2.5 a meeting; fewest 2, most 3)" in reply
    assert "8 different, 8 first-timers" in reply
    assert "within 3 months: 3 of 6 came again (50%); 2 first seen too recently" in reply
    assert "within 6 months: 4 of 5 came again (80%)" in reply
    assert "Harbour Lab (2 people), Northfield University (2 people)" in reply
    assert "6 items proposed, 2 discussed, 0 rolled over" in reply
    # The chart, uploaded through the bot handler (zulip_bots' stub answers a uri), linked:
    assert reply.splitlines()[-1].startswith("[attendance.png](https://server/user_uploads/")
    for name in ("Bob", "Eve", "Cy"):  # counts and organisations only: nobody by name
        assert name not in reply


def test_the_summary_links_the_sites_page_when_the_site_is_public(db_url: str) -> None:
    public = dataclasses.replace(CAFE, site_url="https://cafe.example.org/cafe/")
    h = Harness(db_url, series=(public,))
    try:
        import_both(h)
        (reply,) = h.send("insights 6 months").replies
    finally:
        h.close()
    lines = reply.splitlines()
    assert lines[-2] == "Charts and tables: https://cafe.example.org/cafe/insights/?period=6+months"
    assert lines[-1].startswith("[attendance.png](")


def test_insights_with_no_meetings_in_the_period_says_so(h: Harness) -> None:
    for period in ("2029", "since 2032-01-01"):
        (reply,) = h.send(f"insights {period}").replies
        assert "No meetings were held in this period" in reply
        assert "user_uploads" not in reply  # no chart of nothing


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        pytest.param("insights soon", "I don't know the period “soon”", id="unknown"),
        pytest.param("insights 1850", "1850 is too long ago", id="long-ago"),
        pytest.param("insights since 2031-13-01", "2031-13-01 is no date", id="bad-date"),
        pytest.param("insights 0 months", "Give a period of 1 month or more", id="zero"),
    ],
)
def test_bad_periods_get_a_helpful_reply(h: Harness, text: str, wanted: str) -> None:
    (reply,) = h.send(text).replies
    assert wanted in reply
    assert "insights" in reply.split(wanted, 1)[1]  # with an example to copy


def test_lapsed_is_for_organisers_only(h: Harness) -> None:
    (reply,) = h.send("insights lapsed").replies  # Ada is no organiser
    assert "Only an organiser of Collaboration Cafe may see who has not come back" in reply
    assert "Bob" not in reply


def test_lapsed_asked_in_the_stream_goes_to_the_organiser_in_a_dm(h: Harness) -> None:
    h.stub.reset_transcript()
    h.handler.handle_message(h.message("insights lapsed", OLGA), h.stub)
    sent = {kind: message for kind, message in h.stub.transcript}
    assert "Bob" not in sent["send_reply"]["content"]  # the stream sees no names
    assert "direct message" in sent["send_reply"]["content"]
    direct = sent["send_message"]
    assert (direct["type"], direct["to"]) == ("private", [OLGA.id])
    assert "- Bob (@bob): 3 meetings, last on 2030-12-16" in direct["content"]


def test_lapsed_in_a_dm_is_answered_there(h: Harness) -> None:
    (reply,) = h.dm("insights lapsed 6", OLGA).replies
    assert "regulars not seen in the last 6 months" in reply
    assert "Nobody: every regular has been back within that time." in reply


# ---------------------------------------------------------------- on the command line


def cafebot(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("cafebot")
    return subprocess.run(
        [str(exe), *args, "--db", f"sqlite:///{tmp_path / 'cli.db'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_cafebot_insights_in_text_json_and_csv(tmp_path: Path) -> None:
    for year, text in (("2030", ARCHIVE_2030), ("2031", ARCHIVE_2031)):
        (tmp_path / f"{year}.md").write_text(text, encoding="utf-8")
    assert cafebot(tmp_path, "archive", "import", "2030.md", "2031.md").returncode == 0
    done = cafebot(tmp_path, "insights", "--since", "2020-01-01", "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["totals"] == {
        "meetings": 8,
        "check_ins": 20,
        "people": 8,
        "first_timers": 8,
        "proposed": 6,
        "discussed": 2,
        "rolled_over": 0,
        "actions_opened": 0,
        "actions_closed": 0,
        "actions_open": 0,
    }
    assert [m["returning"] for m in data["meetings"]] == [0, 2, 1, 3, 1, 2, 1, 2]
    # History ahead of the machine's clock: whether someone came back is known up to the
    # latest meeting (19 May 2031), so the counts are those of 1 June.
    assert [(r["returned"], r["counted"], r["to_tell"]) for r in data["retention"]] == [
        (3, 6, 2),
        (4, 5, 3),
    ]
    csv_out = cafebot(tmp_path, "insights", "--since", "2020-01-01", "--format", "csv").stdout
    assert csv_out.splitlines()[:2] == [
        "series,date,attendance,first_timers,returning,proposed,discussed,rolled_over,"
        "actions_opened,actions_closed",
        "cafe,2030-09-16,3,3,0,2,1,0,0,0",
    ]
    text_out = cafebot(tmp_path, "insights", "--since", "2020-01-01").stdout
    assert "8 meetings, 20 check-ins" in text_out
    assert "2031-05-19       3      1          2" in text_out
    bad = cafebot(tmp_path, "insights", "--since", "last year")
    assert bad.returncode == 2
    assert "give it as YYYY-MM-DD, e.g. --since 2030-05-01" in bad.stderr
    assert "Traceback" not in bad.stderr

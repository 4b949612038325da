"""Property: no input makes the bot fail; every answer is a reaction or a clear reply."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cafebot.bot.app import APOLOGY
from cafebot.commands.registry import REGISTRY
from tests.harness import ADA, BOB, OLGA, Harness

WORDS = sorted({w for spec in REGISTRY for w in (spec.name, *spec.aliases)})
PIECES = st.sampled_from(
    ["A1", "A2", "S1", "C1", "I1", "2031-06-17/A1", "2031-07-15/A1", "10m", "(5 min)", "10-15 mins",
     "0m", "[Proj]", "[", "@**Ada Lovelace|11**", "@**all**", "/", "@ada", "last", "next", "1",
     "\n", "# h", "```", "-", "Release plans", "é漢字🎉", "\u202e", "\x00"]
)  # fmt: skip
TEXT = st.lists(st.one_of(PIECES, st.text(max_size=20)), max_size=8).map(" ".join)


def test_no_input_breaks_the_bot(db_url: str) -> None:
    bot = Harness(db_url)

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
    )
    @given(
        word=st.one_of(st.sampled_from(WORDS), st.text(max_size=10)),
        rest=TEXT,
        user=st.sampled_from([ADA, BOB, OLGA]),
        dm=st.booleans(),
    )
    def check(word: str, rest: str, user: object, dm: bool) -> None:
        answer = bot.send(f"{word} {rest}", user, stream=None if dm else "jupyterhub")  # type: ignore[arg-type]
        assert APOLOGY not in answer.replies
        assert answer.reactions or answer.replies or not (word + rest).strip()
        for reply in answer.replies:
            assert "@**all**" not in reply.replace("@_**all**", "")
            assert len(reply) < 10_000

    try:
        check()
    finally:
        bot.close()

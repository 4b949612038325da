"""Community insights: who comes, who comes back, and what the cafe gets done.

:mod:`~cafebot.insights.numbers` counts them from the database (pure queries, no
names in what it gives; :mod:`~cafebot.insights.lapsed`, which names the regulars
who have not come back, is for organisers);
:mod:`~cafebot.insights.charts` draws them with matplotlib (SVG for the site, PNG for
chat); :mod:`~cafebot.insights.report` puts them in words, text and CSV; and
:mod:`~cafebot.insights.commands` holds ``insights`` in chat. The package sits between
the dispatcher and the cafe's rules: it may import the rules, the command language,
storage and the core, never the dispatcher, the edge or the command line.
"""

"""The plant-scale benchmark behind ``make bench`` (issue 5).

Kept out of ``monitor_app``: nothing here runs in the console; it starts a
private Redis and a daphne, drives them from outside like browsers and
servers would, and measures."""

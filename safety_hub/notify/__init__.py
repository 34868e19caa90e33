"""Reaching people: who is told of an alarm, through which channel, when, and how it was dealt
with (issue 13). ``contacts`` is the contract between the people directory
(``safety_hub/people/``) and the notification planner."""

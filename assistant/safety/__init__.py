"""Red-flag safety screen: every message is checked before retrieval.

normalise -> analysis (sentences, clauses, scoping triggers) -> rule matcher and learned detector
-> screen (the higher tier wins; history carried) -> replies.
"""

from .replies import INFO_REQUEST_NOTE, red_flag_reply
from .rules import LEVEL_RANK, load_rules
from .normalise import normalise
from .screen import SafetyScreen

__all__ = ["INFO_REQUEST_NOTE", "LEVEL_RANK", "SafetyScreen", "load_rules", "normalise", "red_flag_reply"]

"""The test suite reads the CLI's English words (the message ids): the lab inventory's notify_lang
(id) would otherwise make the CLI speak Bahasa Indonesia. Tests of the Indonesian CLI set
SIMRS_LANG themselves (tests/unit/test_i18n.py). e2e's `simrs` processes inherit it."""

import os

os.environ.setdefault("SIMRS_LANG", "en")

"""Documentation shared by the collection's modules: the ``attributes:`` block.

DOCUMENTATION (simrs.downtime.attributes): check mode fully supported (the module only measures,
changes nothing, and says what it would do), no diff mode. NO_CHECK_MODE
(simrs.downtime.attributes.no_check_mode): a module that cannot run in check mode.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description:
    - Can run in check mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description:
    - Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: none
"""

    NO_CHECK_MODE = r"""
attributes:
  check_mode:
    description:
    - Can run in check mode and return changed status prediction without modifying target.
    support: none
  diff_mode:
    description:
    - Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: none
"""

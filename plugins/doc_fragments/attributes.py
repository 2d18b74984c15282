"""Documentation shared by the collection's modules: the ``attributes:`` block.

DOCUMENTATION (simrs.downtime.attributes): check mode fully supported (the module only measures,
changes nothing, and says what it would do), no diff mode.
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

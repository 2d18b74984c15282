# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja test ``ipv4_address``: a dotted IPv4 address, four decimal numbers from 0 to 255 (no
leading zeros, no prefix). A pattern alone lets 198.18.0.300 through to fail later, unclearly,
in arping or a socket call."""

from __future__ import annotations

DOCUMENTATION = r"""
name: ipv4_address
author: SIMRS downtime automation maintainers
version_added: "0.2.0"
short_description: Is the value a plain dotted IPv4 address?
description:
  - True for four decimal numbers from 0 to 255 separated by dots, without leading zeros (some tools
    read C(010) as octal) and without a prefix length.
options:
  _input:
    description: The value to test.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Refuse a service IP that is not an IPv4 address
  ansible.builtin.assert:
    that:
      - simrs_service_ip is simrs.downtime.ipv4_address
"""

RETURN = r"""
_value:
  description: Whether the value is a plain dotted IPv4 address.
  type: bool
"""


def ipv4_address(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = value.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not part.isdigit() or not part.isascii() or (len(part) > 1 and part.startswith("0")):
            return False
        if int(part) > 255:
            return False
    return True


class TestModule:
    def tests(self) -> dict:
        return {"ipv4_address": ipv4_address}

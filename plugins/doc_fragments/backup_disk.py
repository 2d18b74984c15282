"""Documentation shared by the backup_* modules (role backup): the external backup disk's options.

DOCUMENTATION (simrs.downtime.backup_disk): where the disk is mounted, for every module that reads
or writes it. MARKER (simrs.downtime.backup_disk.marker): how the disk is recognised, for the
modules that write to it. The matching argument specs are disk_argument_spec() in
module_utils/backup.py; keep the two in step.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  mount_point:
    description:
    - Where the external backup disk is mounted.
    - A folder there with no filesystem mounted on it is refused (it is the server's own disk),
      except by M(simrs.downtime.backup_disk_info), which describes what it finds.
    type: path
    required: true
"""

    MARKER = r"""
options:
  disk_label:
    description: The disk's label, as its marker must name it.
    type: str
    required: true
  disk_uuid:
    description: The disk's UUID; when set the marker must name it instead of the label.
    type: str
    default: ''
  require_marker:
    description: Refuse a disk without the marker file C(.simrs-backup-disk).
    type: bool
    default: true
"""

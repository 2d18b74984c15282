"""Builds the wheel with the collection simrs.downtime inside it (everything else is pyproject.toml).

An installed `simrs` runs the playbooks of the wheel it came from: the build copies the
collection (galaxy.yml, ansible.cfg, meta/, playbooks/, plugins/, roles/) to
orchestrator/_collection/ansible_collections/simrs/downtime, which orchestrator/collection.py
finds. A checkout (and `pip install -e`) is left as it is: there the checkout is the collection.
The sdist carries the same files (MANIFEST.in), so a wheel built from it has them too.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

COLLECTION = ("galaxy.yml", "ansible.cfg", "meta", "playbooks", "plugins", "roles")
TARGET = ("orchestrator", "_collection", "ansible_collections", "simrs", "downtime")
# Caches, and the lint settings that only apply to working in a checkout.
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "ruff.toml")


class BuildPyWithCollection(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install runs the checkout itself
        source = Path(__file__).resolve().parent
        dest = Path(self.build_lib, *TARGET)
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for name in COLLECTION:
            path = source / name
            if path.is_dir():
                shutil.copytree(path, dest / name, ignore=IGNORE)
            else:
                shutil.copy2(path, dest / name)


setup(cmdclass={"build_py": BuildPyWithCollection})

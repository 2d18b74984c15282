from __future__ import annotations

from orchestrator.lab import images


def test_os_hash_is_stable_and_follows_the_package_list(monkeypatch):
    first = images.os_recipe_hash()
    assert first == images.os_recipe_hash()
    monkeypatch.setattr(images, "SERVER_PACKAGES", (*images.SERVER_PACKAGES, "htop"))
    assert images.os_recipe_hash() != first


def test_host_hash_follows_every_file_of_the_stand_in(tmp_path, monkeypatch):
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "Containerfile").write_text("FROM x\n")
    app = tmp_path / "rootfs" / "web.py"
    app.write_text("v1")
    monkeypatch.setattr(images, "IMAGE_DIR", tmp_path)
    h1 = images.host_recipe_hash("localhost/simrs-os:aaa")
    assert h1 == images.host_recipe_hash("localhost/simrs-os:aaa")
    assert h1 != images.host_recipe_hash("localhost/simrs-os:bbb")
    app.write_text("v2")
    assert images.host_recipe_hash("localhost/simrs-os:aaa") != h1


def test_mirror_can_be_overridden(monkeypatch):
    monkeypatch.setenv("SIMRS_DEBIAN_MIRROR", "http://mirror.example/debian")
    assert images.debian_mirror() == "http://mirror.example/debian"

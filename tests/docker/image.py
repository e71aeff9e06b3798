"""A tiny trainer image built without any registry: busybox-static + tests/docker/segformer.sh.

The root filesystem is written as a tarball (``/bin/busybox`` and one symlink per applet,
``/usr/local/bin/segformer``, ``/tmp``, ``/etc/passwd``) and turned into an image with
``docker import`` (the SDK's ``import_image``). Like a TAO image, it declares
``NVIDIA_VISIBLE_DEVICES=all`` in its environment, so the tests can check that the launcher
overrides it.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAINER = HERE / "segformer.sh"
IMAGE = "automl-test:latest"
CHANGES = [
    "ENV PATH=/usr/local/bin:/usr/bin:/bin",
    "ENV NVIDIA_VISIBLE_DEVICES=all",
    "WORKDIR /",
]
_PT_INTERP = 3


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a program interpreter (statically linked)."""
    with path.open("rb") as handle:
        head = handle.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only
            return False
        endian = "<" if head[5] == 1 else ">"
        phoff, = struct.unpack_from(endian + "Q", head, 0x20)
        phentsize, phnum = struct.unpack_from(endian + "HH", head, 0x36)
        for index in range(phnum):
            handle.seek(phoff + index * phentsize)
            p_type, = struct.unpack(endian + "I", handle.read(4))
            if p_type == _PT_INTERP:
                return False
    return True


def find_static_busybox() -> tuple[Path | None, str]:
    """(path, '') of a statically linked busybox, or (None, why not)."""
    found = shutil.which("busybox")
    if not found:
        return None, "busybox not installed (apt-get install busybox-static; see .ci/run)"
    path = Path(found).resolve()
    if not is_static_elf(path):
        return None, f"{path} is dynamically linked: install busybox-static"
    return path, ""


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid = len(data), mode, 0, 0
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, 0, 0
    tar.addfile(info)


def _add_link(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.uid, info.gid = tarfile.SYMTYPE, target, 0o777, 0, 0
    tar.addfile(info)


def build_rootfs(dest: Path, busybox: Path, trainer: Path = TRAINER) -> Path:
    """Write the image's root filesystem as a tarball at ``dest``."""
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    with tarfile.open(dest, "w") as tar:
        for folder in ("bin", "usr", "usr/bin", "usr/local", "usr/local/bin", "etc", "root",
                       "dev", "proc", "sys"):
            _add_dir(tar, folder, 0o700 if folder == "root" else 0o755)
        _add_dir(tar, "tmp", 0o1777)
        _add_file(tar, "bin/busybox", busybox.read_bytes(), 0o755)
        for applet in sorted(set(applets) - {"busybox"}):
            _add_link(tar, f"bin/{applet}", "busybox")
        _add_file(tar, "usr/local/bin/segformer", trainer.read_bytes(), 0o755)
        _add_file(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                  b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644)
        _add_file(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\n", 0o644)
    return dest


def build_image(client, workdir: Path, tag: str = IMAGE) -> str:
    """Build and import the test image into the engine of ``client``; returns its tag."""
    busybox, why = find_static_busybox()
    if busybox is None:
        raise RuntimeError(why)
    tarball = build_rootfs(workdir / "rootfs.tar", busybox)
    repository, _, version = tag.partition(":")
    client.api.import_image(src=str(tarball), repository=repository, tag=version or "latest",
                            changes=CHANGES)
    client.images.get(tag)  # raises if the import did not produce it
    return tag

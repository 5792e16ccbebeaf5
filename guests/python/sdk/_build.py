"""A minimal PEP 517 build backend for labhost-lab (wheels only): the `lab`
package plus the lab:api WIT of the labhost checkout (``host/wit/*.wit``,
three directories up) as ``lab_wit/*.wit``. Reproducible: fixed timestamps
and file order, so the same inputs give the same wheel bytes."""

import base64
import hashlib
import os
import zipfile
from pathlib import Path

NAME, VERSION = "labhost-lab", "0.2.0"
DIST = NAME.replace("-", "_")
HERE = Path(__file__).resolve().parent
HOST_WIT = HERE.parent.parent.parent / "host" / "wit"
TAG = "py3-none-any"


def _files():
    """(path in the wheel, bytes) of the package."""
    out = []
    for p in sorted([*(HERE / "lab").rglob("*"), *(HERE / "lab_wit").rglob("*")]):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".wit":
            out.append((p.relative_to(HERE).as_posix(), p.read_bytes()))
    wit = sorted(HOST_WIT.glob("*.wit")) or sorted((HERE / "lab_wit").glob("*.wit"))
    if not wit:
        raise RuntimeError(f"{NAME}: no WIT in {HOST_WIT} nor lab_wit/")
    out += [(f"lab_wit/{p.name}", p.read_bytes()) for p in wit]
    return out


def _metadata():
    readme = (HERE / "README.md").read_text()
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {NAME}\nVersion: {VERSION}\n"
        "Summary: Write labhost plugins in Python (componentize-py): the lab:api@0.2.0 SDK and its WIT\n"
        "License: Apache-2.0\nRequires-Python: >=3.10\n"
        "Description-Content-Type: text/markdown\n\n" + readme
    ).encode()


def _dist_info():
    wheel = f"Wheel-Version: 1.0\nGenerator: labhost _build\nRoot-Is-Purelib: true\nTag: {TAG}\n"
    d = f"{DIST}-{VERSION}.dist-info"
    return [(f"{d}/METADATA", _metadata()), (f"{d}/WHEEL", wheel.encode())]


def _hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    for name, data in _dist_info():
        path = Path(metadata_directory) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return f"{DIST}-{VERSION}.dist-info"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = f"{DIST}-{VERSION}-{TAG}.whl"
    entries = _files() + _dist_info()
    record = f"{DIST}-{VERSION}.dist-info/RECORD"
    lines = [f"{n},{_hash(d)},{len(d)}" for n, d in entries] + [f"{record},,"]
    entries.append((record, ("\n".join(lines) + "\n").encode()))
    tmp = Path(wheel_directory) / (name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in entries:
            info = zipfile.ZipInfo(n, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, d)
    os.replace(tmp, Path(wheel_directory) / name)
    return name

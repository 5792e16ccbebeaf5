"""The lab:api WIT the SDK is written against, shipped inside the package.

``python -m lab_wit`` prints the directory (holding ``lab.wit``) to hand to
componentize-py::

    componentize-py -d "$(python -m lab_wit)" -w plugin componentize app -o plugin.wasm

In the wheel, ``lab_wit/lab.wit`` is a copy of the labhost checkout's ``host/wit/lab.wit``
made when the wheel is built (``setup.py``); run from a checkout
(``-p guests/python/sdk``), the checkout's ``host/wit`` is used.
"""

from pathlib import Path

__all__ = ["path"]


def path() -> Path:
    """The directory holding ``lab.wit``."""
    here = Path(__file__).resolve().parent
    if (here / "lab.wit").is_file():
        return here
    checkout = here.parents[3] / "host" / "wit" if len(here.parents) > 3 else None
    if checkout is not None and (checkout / "lab.wit").is_file():
        return checkout
    raise FileNotFoundError(f"no lab.wit in {here}: a broken labhost-lab install")

"""``python -m lab_wit``: print the directory holding the lab:api WIT."""

from lab_wit import path

print(path())

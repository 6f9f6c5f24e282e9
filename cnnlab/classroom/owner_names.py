"""How a run's owner is named on a page: their display name, else their id without its kind.

Its own module, free of pandas, because Home's runs table uses it and Home imports no pandas.
"""

from __future__ import annotations

from collections.abc import Mapping


def owner_name(owner: str, names: Mapping[str, str]) -> str:
    """The owner's display name if known, else their id without its kind ("student:ada" is "ada")."""
    return names.get(owner) or owner.partition(":")[2] or owner

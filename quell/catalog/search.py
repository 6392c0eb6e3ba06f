"""Text search in the catalog: which datasets and checks the words typed into a search box find.

Each keeps the rows whose names contain the words, ignoring case, and reads at most a fixed number
of words, so a long search stays a short statement. The lists and pickers of quell.catalog.queries
narrow their rows with these.
"""

from __future__ import annotations

from django.db.models import QuerySet, Value
from django.db.models.functions import Concat

from quell.catalog.models import Check, Dataset

DATASET_SEARCH_WORDS = 10
CHECK_SEARCH_WORDS = 10


def datasets_named(datasets: QuerySet[Dataset], search: str) -> QuerySet[Dataset]:
    """These datasets whose name contains `search` (the datasets page's search)."""
    return datasets.filter(name__icontains=search)


def datasets_matching(datasets: QuerySet[Dataset], matching: str) -> QuerySet[Dataset]:
    """These datasets whose `source/name` contains every word of `matching` (the dataset pickers' search)."""
    words = matching.split()[:DATASET_SEARCH_WORDS]
    if words:
        datasets = datasets.alias(path=Concat("data_source__name", Value("/"), "name"))
        for word in words:
            datasets = datasets.filter(path__icontains=word)
    return datasets


def checks_named(checks: QuerySet[Check], search: str) -> QuerySet[Check]:
    """These checks whose name contains every word of `search`."""
    for word in search.split()[:CHECK_SEARCH_WORDS]:
        checks = checks.filter(name__icontains=word)
    return checks

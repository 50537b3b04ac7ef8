"""Research cohorts: criteria (``criteria``), saved cohorts and their runs (``saved``), exports
(``export``). The Python API of saved cohorts is re-exported here::

    from medsearch import cohorts

    cohorts.create(ctx, "effusions", include=["text:pleural effusion>=0.6"])
"""

from medsearch.cohorts.saved import create, create_discordant, delete, diff, list_cohorts, refresh, show

__all__ = ["create", "create_discordant", "delete", "diff", "list_cohorts", "refresh", "show"]

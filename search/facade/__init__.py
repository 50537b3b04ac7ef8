"""Groups of ``medsearch.api.Medsearch`` operations, kept apart so that api.py stays short.

- ``items.ItemsMixin``: one image's record, path, thumbnail, and the store's facts (``info``).
- ``cohorts.Cohorts``: ``ms.cohorts``, saved research cohorts (create, refresh, show, diff, list, delete,
  export), the one door the CLI, the HTTP API and Python use.
"""

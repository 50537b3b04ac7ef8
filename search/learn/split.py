"""Train/validation/test splits that never put one group (patient, study, series or any column) in two
splits, stratified by a label, seeded, saved as a text field (usable in ``--where`` and exports).

Assignment (``assign_splits``), per stratum: the groups are shuffled with the seed, then taken largest
first, each into the split furthest below its target share of the stratum's images. So each split's
size is within one group's images of its target, and the same seed gives the same split.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from medsearch.errors import InvalidQuery
from medsearch.learn.selection import all_ids, select_ids
from medsearch.query.ranking import group_column, group_keys
from medsearch.storage.learn import check_field_name, field_counts, load_split, save_split
from medsearch.storage.queries import group_values

if TYPE_CHECKING:
    from medsearch.context import Context

DEFAULT_NAMES = {2: ("train", "test"), 3: ("train", "validation", "test")}


def parse_ratios(text: str) -> tuple[float, ...]:
    """``"70/15/15"`` -> (0.7, 0.15, 0.15): positive numbers, normalised to sum 1. Raises InvalidQuery."""
    try:
        parts = tuple(float(part) for part in text.split("/"))
    except ValueError:
        raise InvalidQuery(f"--ratios takes numbers separated by '/', such as 70/15/15, not {text!r}") from None
    if len(parts) < 2 or min(parts) <= 0:
        raise InvalidQuery(f"--ratios needs two or more positive numbers, not {text!r}")
    return tuple(part / sum(parts) for part in parts)


def assign_splits(groups: np.ndarray, strata: np.ndarray, ratios: Sequence[float], seed: int) -> np.ndarray:
    """(n,) split number (0..len(ratios)-1) per sample, whole groups at a time. ``groups``, ``strata``:
    (n,) keys; a group belongs to the stratum most of its samples have."""
    rng = np.random.default_rng(seed)
    shares = np.asarray(ratios, dtype=np.float64) / float(np.sum(ratios))
    members: dict[Any, list[int]] = {}
    for row, key in enumerate(groups.tolist()):
        members.setdefault(key, []).append(row)
    by_stratum: dict[Any, list[Any]] = {}
    for key, rows in members.items():
        stratum = Counter(strata[rows].tolist()).most_common(1)[0][0]
        by_stratum.setdefault(stratum, []).append(key)
    out = np.empty(len(groups), dtype=np.int64)
    for stratum in sorted(by_stratum, key=str):
        keys = [by_stratum[stratum][n] for n in rng.permutation(len(by_stratum[stratum]))]
        keys.sort(key=lambda key: -len(members[key]))
        targets = shares * sum(len(members[key]) for key in keys)
        assigned = np.zeros(len(shares))
        for key in keys:
            chosen = int(np.argmax(targets - assigned))
            out[members[key]] = chosen
            assigned[chosen] += len(members[key])
    return out


MISSING_CHOICES = ("refuse", "leave-out", "alone")
"""What ``split`` does with images that have no ``by`` value: refuse (the default), leave them out of the
split (no value in the field), or put each in a group of its own."""


def split(ctx: Context, name: str, by: str = "patient", ratios: Sequence[float] = (0.7, 0.15, 0.15),
          names: Sequence[str] | None = None, stratify: str | None = None, seed: int = 0,
          scope: Sequence[str] = (), missing: str = "refuse") -> dict[str, Any]:
    """Split the images of ``scope`` (a selection, see ``medsearch.learn.selection``; all by default) by
    ``by`` and save the split names as text field ``name``, replacing its older values. Images without a
    ``by`` value are handled as ``missing`` says (``MISSING_CHOICES``). A scope of one cohort
    (``cohort:NAME``) also keeps the split in that cohort's definition and latest manifest, so ``cohort
    refresh`` re-makes it. Returns counts of images and groups per split (and per stratum) and
    ``without_group`` (images without a ``by`` value; left out with ``leave-out``). Raises InvalidQuery
    (also for images without a value under ``refuse``, with their count), NotFound, ModelMismatch
    (``name`` was made on a store of another model)."""
    check_field_name(name)
    names = tuple(names or DEFAULT_NAMES.get(len(ratios)) or [f"split{n + 1}" for n in range(len(ratios))])
    if len(names) != len(ratios) or len(set(names)) != len(names):
        raise InvalidQuery(f"give one distinct name per ratio ({len(ratios)}), not {', '.join(names)}")
    if missing not in MISSING_CHOICES:
        raise InvalidQuery(f"--missing takes {', '.join(MISSING_CHOICES)}, not {missing!r}")
    ids = select_ids(ctx, scope) if scope else all_ids(ctx)
    groups = group_keys(ctx.store, ids, by)
    alone = np.array([str(key).startswith("alone=") for key in groups.tolist()], dtype=bool)
    _check_missing(by, int(alone.sum()), len(ids), missing)
    if missing == "leave-out":
        ids, groups = ids[~alone], groups[~alone]
    strata = _strata(ctx, ids, stratify)
    chosen = assign_splits(groups, strata, ratios, seed)
    values = {int(i): names[s] for i, s in zip(ids, chosen, strict=True)}
    tally = {**_counts(names, chosen, groups, strata if stratify else None), "without_group": int(alone.sum())}
    definition = {"by": by, "ratios": list(ratios), "names": list(names), "stratify": stratify, "seed": seed,
                  "scope": list(scope), "missing": missing}
    save_split(ctx.store, name, values, definition, tally, _cohort_of(scope))
    return {"name": name, **definition, **tally}


def _check_missing(by: str, without: int, total: int, missing: str) -> None:
    """Raises InvalidQuery when images have no ``by`` value and ``missing`` is refuse, or every image
    would be left out."""
    if without and missing == "refuse":
        raise InvalidQuery(f"{without} of {total} images {'has' if without == 1 else 'have'} no {by!r} value, so no "
                           "group keeps them together: "
                           f"leave them out (--missing leave-out), give each a group of its own (--missing alone), "
                           "or split by another column (--by)")
    if without == total and missing == "leave-out":
        raise InvalidQuery(f"none of the {total} images has a {by!r} value: nothing left to split")


def counts(ctx: Context, name: str) -> dict[str, Any]:
    """Images per value of split field ``name`` now, with how it was made when ``split`` made it.
    Raises NotFound, ModelMismatch (made on a store of another model)."""
    return {"name": name, "images": field_counts(ctx.store, name), "record": load_split(ctx.store, name)}


def _cohort_of(scope: Sequence[str]) -> str | None:
    """The cohort's name when ``scope`` is one cohort, else None."""
    kind, _, rest = scope[0].strip().partition(":") if len(scope) == 1 else ("", "", "")
    return rest.strip() if kind == "cohort" else None


def _strata(ctx: Context, ids: np.ndarray, stratify: str | None) -> np.ndarray:
    if stratify is None:
        return np.zeros(len(ids), dtype=object)
    values = group_values(ctx.store, ids.tolist(), group_column(ctx.store, stratify))
    return np.array([str(values.get(int(i))) for i in ids], dtype=object)


def _counts(names: Sequence[str], chosen: np.ndarray, groups: np.ndarray,
            strata: np.ndarray | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "images": {n: int((chosen == s).sum()) for s, n in enumerate(names)},
        "groups": {n: len(set(groups[chosen == s].tolist())) for s, n in enumerate(names)},
    }
    if strata is not None:
        out["strata"] = {n: dict(Counter(strata[chosen == s].tolist())) for s, n in enumerate(names)}
    return out

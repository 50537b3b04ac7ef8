"""Out-of-domain use of a label set: images whose DICOM modality is not one the set is made for (its
``modality`` metadata, e.g. ``"CR, DX"`` for chest X-rays). Their probabilities are computed all the same;
this says how many there are, so that a score on an ultrasound from a chest X-ray set is not taken at face
value."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from medsearch.labels.labelsets import LabelSet
from medsearch.storage import queries
from medsearch.storage.store import Store


def modality_warning(store: Store, labels: LabelSet, ids: Sequence[int]) -> str | None:
    """One line naming how many of the stored images ``ids`` have a modality the set is not made for
    (by modality), and how many have none recorded; None when the set names no modality or every image
    with a modality matches. Reads the store only."""
    wanted = labels.modalities
    if not wanted or not ids:
        return None
    found = queries.group_values(store, list(dict.fromkeys(ids)), "modality")
    other = Counter(str(value).upper() for value in found.values() if str(value).upper() not in wanted)
    if not other:
        return None
    unrecorded = len(set(ids)) - len(found)
    name = labels.name or "this label set"
    kinds = ", ".join(f"{count} {modality}" for modality, count in other.most_common())
    outside = sum(other.values())
    line = (f"{name} is made for {'/'.join(wanted)} images; {outside} of {len(set(ids))} "
            f"{'is' if outside == 1 else 'are'} another modality ({kinds}): their scores mean little")
    return line + (f"; {unrecorded} {'has' if unrecorded == 1 else 'have'} no modality recorded" if unrecorded
                   else "")

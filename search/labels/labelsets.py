"""Label sets for zero-shot scoring: each label is a small ensemble of text prompts whose vectors are
averaged, with an optional probability threshold above which the label is reported present.

A label set is a TOML file (read with ``tomllib``): every table is a label, every top-level text value is
metadata (``description = "..."``)::

    description = "Chest X-ray findings"

    [pleural_effusion]
    prompts = ["pleural effusion", "blunting of the costophrenic angle"]
    threshold = 0.5      # optional, a probability in [0, 1]
    display = "Pleural effusion"   # optional, the name output shows (default: the table's name)
    korean = "흉막삼출"   # optional, the label's Korean display name
    synonyms = ["effusion", "흉수"]   # optional, report terms (English and Korean) the report labeller reads
    neutral_terms = ["costophrenic angle"]   # optional, report terms labelled only when judged (see below)

Built-in sets live in ``search/labels/builtin/*.toml`` (commented examples of the format) and are named by
their file stem (``cxr-findings``, ``skin-lesions``). ``parse_label_list("normal;pneumonia")`` makes a set
of one-prompt labels from the command line. Every malformed input raises ``InvalidQuery``.

``synonyms`` and ``neutral_terms`` are for the report labeller (``medsearch.reports.labeller``): a synonym
names the finding ("enlarged heart"), a neutral term names what it is judged on ("heart size") and counts
only in a sentence that calls it normal, enlarged or borderline. Neither is part of the digest.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from medsearch.errors import InvalidQuery

_BUILTIN_PACKAGE, _BUILTIN_FOLDER = "medsearch.labels", "builtin"


def _canonical(labels: tuple[Label, ...]) -> bytes:
    """Canonical JSON of the labels, sorted by name: the order of labels in a file does not matter."""
    items = [{"name": x.name, "prompts": list(x.prompts), "threshold": x.threshold} for x in labels]
    items.sort(key=lambda item: str(item["name"]))
    return json.dumps(items, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Label:
    """One label: ``name`` (reported, and the field name its saved scores get), ``prompts`` (averaged as an
    ensemble; their order counts for the digest), ``threshold`` (probability, or None to report only the
    probability), ``display`` and ``korean`` (optional display names, not in the digest), ``synonyms`` and
    ``neutral_terms`` (report terms for the report labeller, not in the digest). Raises ``InvalidQuery`` for an
    empty name, no prompts, a blank or repeated prompt, or a threshold outside [0, 1]."""

    name: str
    prompts: tuple[str, ...]
    threshold: float | None = None
    korean: str | None = field(default=None, compare=False)
    display: str | None = field(default=None, compare=False)
    synonyms: tuple[str, ...] = field(default=(), compare=False)
    neutral_terms: tuple[str, ...] = field(default=(), compare=False)

    @property
    def shown(self) -> str:
        """The name output shows: ``display``, else ``name``."""
        return self.display or self.name

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InvalidQuery("a label needs a name")
        if not self.prompts or not all(isinstance(p, str) and p.strip() for p in self.prompts):
            raise InvalidQuery(f"label {self.name!r} needs at least one prompt, and no prompt may be blank")
        if len(set(self.prompts)) != len(self.prompts):
            raise InvalidQuery(f"label {self.name!r} repeats a prompt")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise InvalidQuery(f"label {self.name!r}: threshold must be a probability in [0, 1]")

    def digest(self) -> str:
        """sha256 (hex) of this label's canonical JSON: what its saved scores depend on."""
        return hashlib.sha256(_canonical((self,))).hexdigest()


@dataclass(frozen=True)
class LabelSet:
    """Labels with distinct names (at least one), the set's ``name`` (built-in name, file stem, or "" for
    a list given inline) and its ``metadata`` (top-level text values of the file, sorted by key).
    Raises ``InvalidQuery`` when empty or when two labels share a name."""

    labels: tuple[Label, ...]
    name: str = field(default="", compare=False)
    metadata: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not self.labels:
            raise InvalidQuery("a label set needs at least one label")
        names = [label.name for label in self.labels]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InvalidQuery(f"label names must be distinct; repeated: {', '.join(repeated)}")

    @property
    def names(self) -> tuple[str, ...]:
        """The label names, in file order."""
        return tuple(label.name for label in self.labels)

    @property
    def shown(self) -> dict[str, str]:
        """Label name -> the name output shows (``Label.shown``)."""
        return {label.name: label.shown for label in self.labels}

    @property
    def modalities(self) -> tuple[str, ...]:
        """The DICOM modalities the set is made for (``modality = "CR, DX"`` metadata), or () for any."""
        text = dict(self.metadata).get("modality", "")
        return tuple(part.strip().upper() for part in text.replace(",", " ").split() if part.strip())

    @property
    def description(self) -> str:
        """The ``description`` metadata, or ""."""
        return dict(self.metadata).get("description", "")

    def digest(self) -> str:
        """sha256 (hex) over the canonical JSON of every label's name, prompts and threshold, labels sorted
        by name: it changes exactly when saved scores of this set must be recomputed (or re-thresholded)."""
        return hashlib.sha256(_canonical(self.labels)).hexdigest()


_KEYS = ("prompts", "threshold", "korean", "display", "synonyms", "neutral_terms")


def _texts(name: str, table: dict[str, Any], key: str, source: str) -> tuple[str, ...]:
    """The optional list of texts ``table[key]`` (stripped), () when absent. Raises ``InvalidQuery``."""
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InvalidQuery(f'{source}: label {name!r}: {key} must be a list of texts, e.g. {key} = ["..."]')
    return tuple(v.strip() for v in value)


def _label(name: str, table: dict[str, Any], source: str) -> Label:
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise InvalidQuery(f"{source}: label {name!r} has unknown key(s) {unknown}; allowed: {', '.join(_KEYS)}")
    korean, display = table.get("korean"), table.get("display")
    for key, value in (("korean", korean), ("display", display)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidQuery(f"{source}: label {name!r}: {key} must be a text")
    prompts = table.get("prompts")
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise InvalidQuery(f'{source}: label {name!r} needs prompts = ["...", ...], a list of texts')
    threshold = table.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)):
        raise InvalidQuery(f"{source}: label {name!r}: threshold must be a number, got {threshold!r}")
    try:
        return Label(name, tuple(p.strip() for p in prompts), None if threshold is None else float(threshold),
                     korean, display.strip() if display else None, _texts(name, table, "synonyms", source),
                     _texts(name, table, "neutral_terms", source))
    except InvalidQuery as error:
        raise InvalidQuery(f"{source}: {error}") from None


def _from_toml(text: str, source: str, name: str) -> LabelSet:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidQuery(f"{source}: invalid TOML: {error}") from None
    labels, metadata = [], []
    for key, value in document.items():
        if isinstance(value, dict):
            labels.append(_label(key, value, source))
        elif isinstance(value, str):
            metadata.append((key, value))
        else:
            raise InvalidQuery(f"{source}: top-level {key!r} must be a table (a label) or a text (metadata)")
    try:
        return LabelSet(tuple(labels), name, tuple(sorted(metadata)))
    except InvalidQuery as error:
        raise InvalidQuery(f"{source}: {error}") from None


def builtin_label_sets() -> list[str]:
    """Names of the label sets shipped in ``search/labels/builtin/``, sorted."""
    folder = resources.files(_BUILTIN_PACKAGE).joinpath(_BUILTIN_FOLDER)
    return sorted(
        entry.name.removesuffix(".toml") for entry in folder.iterdir() if entry.name.endswith(".toml")
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidQuery(f"label file not found: {path}") from None
    except UnicodeDecodeError:
        raise InvalidQuery(f"label file is not UTF-8 text: {path}") from None
    except OSError as error:
        raise InvalidQuery(f"cannot read label file {path}: {error.strerror or error}") from None


def load_label_set(path_or_name: str | Path) -> LabelSet:
    """A built-in label set by name (see ``builtin_label_sets``) or a TOML file by path. A string is read
    as a path when it names an existing file, ends in ``.toml`` or contains a slash.

    Raises ``InvalidQuery`` for an unknown built-in name (listing the available ones), a missing or
    unreadable file, invalid TOML, or a malformed label set (no labels, a label without prompts, ...).
    """
    text = str(path_or_name)
    builtins = builtin_label_sets()
    if isinstance(path_or_name, str) and text in builtins:
        resource = resources.files(_BUILTIN_PACKAGE).joinpath(_BUILTIN_FOLDER, f"{text}.toml")
        return _from_toml(resource.read_text(encoding="utf-8"), f"built-in label set {text!r}", text)
    path = Path(path_or_name)
    looks_like_path = path.suffix == ".toml" or "/" in text or "\\" in text or path.exists()
    if isinstance(path_or_name, str) and not looks_like_path:
        raise InvalidQuery(
            f"no built-in label set {text!r}; built-in: {', '.join(builtins)} (or a path to a .toml file)"
        )
    return _from_toml(_read(path), str(path), path.stem)


def parse_label_list(text: str) -> LabelSet:
    """Labels written inline, separated by ';': each is its own single prompt and its name is that text
    (``"normal;pneumonia;pleural effusion"``). Empty pieces are skipped. Raises ``InvalidQuery`` when no
    label is left or a label is repeated."""
    names = [piece.strip() for piece in text.split(";") if piece.strip()]
    if not names:
        raise InvalidQuery(f"no labels in {text!r}: write them separated by ';', e.g. 'normal;pneumonia'")
    return LabelSet(tuple(Label(name, (name,)) for name in names))

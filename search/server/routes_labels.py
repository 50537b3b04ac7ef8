"""Zero-shot labels over HTTP: the built-in label sets, per-image probabilities with a findings summary
for stored images (by id; no file path is ever taken from the client), and the AUC table against the
archive's report labels."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from medsearch.errors import InvalidQuery
from medsearch.labels.labelsets import Label, LabelSet, builtin_label_sets, load_label_set, parse_label_list
from medsearch.labels.present import prompts_searched
from medsearch.labels.zeroshot import NOTE
from medsearch.server.deps import get_engine
from medsearch.server.engine import ServerEngine
from medsearch.server.security import check_token
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

router = APIRouter(prefix="/api", tags=["labels"], dependencies=[Depends(check_token)])

Prompts = Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=50)]


class LabelChoice(BaseModel):
    """Exactly one of ``labels`` ("normal;pneumonia"), ``labels_set`` (a built-in name) or
    ``label_prompts`` ({label: [prompt, ...]}, a prompt ensemble per label)."""

    labels: str | None = Field(default=None, max_length=4000)
    labels_set: str | None = Field(default=None, max_length=100)
    label_prompts: dict[str, Prompts] | None = Field(default=None, max_length=100)


class ClassifyRequest(LabelChoice):
    """The ids to classify, the labels (``LabelChoice``), and whether they exclude each other."""

    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=1, max_length=1000)
    exclusive: bool = False


class ReportTruthRequest(LabelChoice):
    """As ``medsearch evaluate --truth-from-reports``: the labels (default ``labels_set`` cxr-findings),
    the group the interval resamples, bootstrap rounds and seed."""

    group_by: str = Field(default="patient", min_length=1, max_length=200)
    rounds: int = Field(default=1000, ge=100, le=10000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)


def label_set_of(request: LabelChoice) -> LabelSet:
    """The one label set the request names. Raises InvalidQuery (none or several given, unknown built-in
    set, malformed labels)."""
    given = [x for x in (request.labels, request.labels_set, request.label_prompts) if x is not None]
    if len(given) != 1:
        raise InvalidQuery("give exactly one of labels, labels_set or label_prompts")
    if request.labels is not None:
        return parse_label_list(request.labels)
    if request.labels_set is not None:
        if request.labels_set not in builtin_label_sets():
            raise InvalidQuery(f"no built-in label set {request.labels_set!r}; built-in: "
                               f"{', '.join(builtin_label_sets())}")
        return load_label_set(request.labels_set)
    assert request.label_prompts is not None
    return LabelSet(tuple(Label(name, tuple(p.strip() for p in prompts))
                          for name, prompts in request.label_prompts.items()))


def label_set_or_default(request: LabelChoice) -> LabelSet:
    """The label set the request names, cxr-findings when it names none. Raises InvalidQuery."""
    if request.labels is None and request.labels_set is None and request.label_prompts is None:
        return load_label_set("cxr-findings")
    return label_set_of(request)


@router.get("/label-sets")
def label_sets() -> dict[str, Any]:
    """The built-in label sets: name, description and each label's prompts and threshold."""
    sets = [load_label_set(name) for name in builtin_label_sets()]
    return {"label_sets": [{"name": s.name, "description": s.description, "labels": [
        {"name": label.name, "korean": label.korean, "prompts": list(label.prompts), "threshold": label.threshold}
        for label in s.labels]}
        for s in sets]}


@router.post("/classify")
async def classify(request: ClassifyRequest, engine: ServerEngine = Depends(get_engine)) -> dict[str, Any]:
    """Per-label probabilities (the model's sigmoid per label, or a softmax over labels when
    ``exclusive``) for each id, in order, with a findings summary (present, uncertain, needs_review).
    404 for an unknown id, 400 for bad labels. Model scores, not a diagnosis."""
    labels = label_set_of(request)
    results = await run_in_threadpool(engine.medsearch.classify_ids, request.ids, labels, request.exclusive)
    return {"labels": list(labels.names), "searched_as": prompts_searched(engine.medsearch.english, labels),
            "exclusive": request.exclusive, "note": NOTE,
            "results": [asdict(result) for result in results]}


@router.post("/evaluate/reports")
async def evaluate_reports(request: ReportTruthRequest, engine: ServerEngine = Depends(get_engine)) -> dict[str, Any]:
    """Per finding, the zero-shot AUC of the label set's prompts against the report labels of each image's
    study (uncertain left out, counted), with a 95 % interval resampling patients (``group_by``): the
    table ``evaluate --truth-from-reports`` prints. 400 without reports or labelled images."""
    labels = label_set_or_default(request)
    report = await run_in_threadpool(engine.medsearch.learning.evaluate_reports, labels, request.group_by,
                                     request.rounds, request.seed)
    data = asdict(report)
    data.pop("curves")
    return data

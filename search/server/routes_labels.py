"""Zero-shot labels over HTTP: the built-in label sets, and per-image probabilities with a findings
summary for stored images (by id; no file path is ever taken from the client)."""

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


class ClassifyRequest(BaseModel):
    """Exactly one of ``labels`` ("normal;pneumonia"), ``labels_set`` (a built-in name) or
    ``label_prompts`` ({label: [prompt, ...]}, a prompt ensemble per label)."""

    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=1, max_length=1000)
    labels: str | None = Field(default=None, max_length=4000)
    labels_set: str | None = Field(default=None, max_length=100)
    label_prompts: dict[str, Prompts] | None = Field(default=None, max_length=100)
    exclusive: bool = False


def label_set_of(request: ClassifyRequest) -> LabelSet:
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

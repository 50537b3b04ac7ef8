"""Issue 15, item 10: a copied store must not give patient IDs back. With the key outside the store
(MEDSEARCH_PATIENT_KEY or --patient-key FILE) nothing in the store recomputes a pseudonym from a guessed
ID; the store keeps a fingerprint only, and a run with another key is refused."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest
from medsearch.indexer.dicom_meta import patient_key
from medsearch.storage.models import Image
from medsearch.storage.patient_key import KEY_ENV
from medsearch.storage.store import Store
from sqlalchemy import select

from tests.conftest import pydicom_file

Cli = Callable[..., Any]
KEY = "a-key-that-lives-on-another-disk-0001"


def _folder(tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(pydicom_file("CT_small.dcm"), folder / "ct.dcm")
    return folder, str(pydicom.dcmread(folder / "ct.dcm").PatientID)


def _stored_key(store: Path) -> str:
    with Store.open(store) as opened, opened.read_session() as session:
        return str(session.scalar(select(Image.patient_key)))


def _index(cli: Cli, folder: Path, store: Path, model: Path, *extra: Any, expect: int = 0) -> Any:
    return cli("index", folder, "--store", store, "--model", model, "--json", "--workers", "0", *extra,
               expect=expect)


def _recomputable_from(store: Path, patient_id: str, pseudonym: str) -> list[str]:
    """The attack: every file of a copied store tried as the secret (as text, and as hex)."""
    hits = []
    for path in store.iterdir():
        if not path.is_file():
            continue
        data = path.read_bytes()
        candidates = [data, data.strip()]
        with contextlib.suppress(ValueError):
            candidates.append(bytes.fromhex(data.decode().strip()))
        if any(patient_key(patient_id, secret) == pseudonym for secret in candidates):
            hits.append(path.name)
    return hits


def test_a_key_from_the_environment_is_not_in_the_store(cli: Cli, tiny_model: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    folder, patient_id = _folder(tmp_path)
    store = tmp_path / "store"
    monkeypatch.setenv(KEY_ENV, KEY)
    assert _index(cli, folder, store, tiny_model)["added"] == 1
    pseudonym = _stored_key(store)
    assert pseudonym == patient_key(patient_id, KEY.encode())
    assert not (store / "patient-key.secret").exists()
    assert _recomputable_from(store, patient_id, pseudonym) == []
    assert (store / "patient-key.fingerprint").exists()

    monkeypatch.setenv(KEY_ENV, "another-key-entirely-0002")
    shutil.copy(pydicom_file("MR_small.dcm"), folder / "mr.dcm")  # a new file to key
    shown = _index(cli, folder, store, tiny_model, expect=5)
    assert shown["error"]["code"] == "store_error" and "not the one" in shown["error"]["message"]


def test_a_key_file_outside_the_store(cli: Cli, tiny_model: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    folder, patient_id = _folder(tmp_path)
    store, key_file = tmp_path / "store", tmp_path / "keys" / "patient.key"
    key_file.parent.mkdir()
    key_file.write_text(KEY + "\n")
    _index(cli, folder, store, tiny_model, "--patient-key", key_file)
    pseudonym = _stored_key(store)
    assert pseudonym == patient_key(patient_id, KEY.encode())
    assert _recomputable_from(store, patient_id, pseudonym) == []
    shutil.copy(pydicom_file("MR_small.dcm"), folder / "mr.dcm")
    shown = _index(cli, folder, store, tiny_model, expect=5)  # no key: the store's own secret is another key
    assert "not the one" in shown["error"]["message"]


def test_the_default_keeps_the_key_in_the_store(cli: Cli, tiny_model: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented trade-off of the default: a self-contained store whose copy can recompute pseudonyms."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    folder, patient_id = _folder(tmp_path)
    store = tmp_path / "store"
    _index(cli, folder, store, tiny_model)
    assert _recomputable_from(store, patient_id, _stored_key(store)) == ["patient-key.secret"]

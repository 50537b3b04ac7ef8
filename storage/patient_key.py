"""Where the secret that keys patient pseudonyms (``medsearch.indexer.dicom_meta.patient_key``) comes from, and the
fingerprint that tells a wrong one.

In order: a key given by the caller (``medsearch index --patient-key FILE``), the environment variable
``MEDSEARCH_PATIENT_KEY``, else ``patient-key.secret`` inside the store (created on first use, mode 0600).
The default keeps a store self-contained but lets anyone holding a copy of the store recompute pseudonyms
from guessed IDs; a key kept outside the store (a file elsewhere, or the environment) does not.

The store keeps only ``patient-key.fingerprint``: an HMAC of a fixed label under the key, which reveals
nothing about the key or the IDs. A run with another key than the one that made the store's pseudonyms is
refused (the same patient would get two pseudonyms)."""

from __future__ import annotations

import hashlib
import hmac
import os
import string
from pathlib import Path

from medsearch.errors import StoreError
from medsearch.storage.store import Store

KEY_ENV = "MEDSEARCH_PATIENT_KEY"
FINGERPRINT_FILE = "patient-key.fingerprint"
MIN_KEY_CHARS = 16


def key_from_text(text: str, source: str) -> bytes:
    """The key bytes of a key's text: 64 hex digits (as ``patient-key.secret`` holds) are decoded, any other
    text of at least MIN_KEY_CHARS characters is taken as UTF-8. Raises StoreError naming ``source``."""
    text = text.strip()
    if len(text) == 64 and all(ch in string.hexdigits for ch in text):
        return bytes.fromhex(text)
    if len(text) < MIN_KEY_CHARS:
        raise StoreError(f"the patient key from {source} is shorter than {MIN_KEY_CHARS} characters")
    return text.encode("utf-8", "surrogateescape")


def read_key_file(path: Path) -> bytes:
    """The key held in the file ``path``. Raises StoreError when it cannot be read or is too short."""
    try:
        return key_from_text(path.read_text(errors="surrogateescape"), str(path))
    except OSError as error:
        raise StoreError(f"cannot read the patient key file {path}: {error.strerror}") from None


def patient_secret(store: Store, given: bytes | None = None) -> bytes:
    """The key for ``store``'s pseudonyms: ``given``, else MEDSEARCH_PATIENT_KEY, else the store's own
    secret file. Records the key's fingerprint on first use; raises StoreError when it differs from the
    recorded one (or when the key is too short)."""
    from_env = os.environ.get(KEY_ENV)
    if given is not None:
        secret = given
    elif from_env:
        secret = key_from_text(from_env, KEY_ENV)
    else:
        secret = store.patient_key_secret()
    _check_fingerprint(store, secret)
    return secret


def fingerprint(secret: bytes) -> str:
    return hmac.new(secret, b"medsearch patient-key fingerprint v1", hashlib.sha256).hexdigest()


def _check_fingerprint(store: Store, secret: bytes) -> None:
    path = store.directory / FINGERPRINT_FILE
    if not path.exists():
        if store.writable:
            path.write_text(fingerprint(secret) + "\n")
        return
    if not hmac.compare_digest(path.read_text().strip(), fingerprint(secret)):
        raise StoreError(f"this patient key is not the one that keyed the pseudonyms in {store.directory}; "
                         f"give the same key (--patient-key or {KEY_ENV}) or index into a new --store")

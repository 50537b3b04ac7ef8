"""The command line's ``--glossary`` and ``--unknown-words`` options are the settings
``MEDSEARCH_GLOSSARY`` and ``MEDSEARCH_UNKNOWN_WORDS`` for this process (``Translator.from_settings``
reads them)."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from medsearch.language.translator import GLOSSARY_SETTING, POLICIES, POLICY_SETTING


def apply_options(glossaries: list[Path] | None, policy: str | None) -> None:
    """Set the two settings from the options given (an option not given leaves its setting as it is).
    Raises typer.BadParameter for a policy not in ``POLICIES``."""
    if policy is not None:
        if policy not in POLICIES:
            raise typer.BadParameter(f"--unknown-words takes {', '.join(POLICIES)}, not {policy!r}")
        os.environ[POLICY_SETTING] = policy
    if glossaries:
        os.environ[GLOSSARY_SETTING] = os.pathsep.join(str(path) for path in glossaries)

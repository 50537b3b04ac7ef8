"""What a new user trips on (issue 30), through the real CLI: a data set's own metadata CSV imported in one
command, unknown truth cells, splits by a field some images lack, a failed first index, out-of-domain use
said out loud, and the wording of counts."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_missing_extras import run_without
from tests.conftest import pydicom_file, write_png

Cli = Callable[..., Any]
COLUMNS = ("patientid,offset,sex,age,finding,RT_PCR_positive,survival,view,modality,date,location,folder,"
           "imagename,doi,url,license,clinical_notes")


def _pngs(folder: Path, count: int) -> list[Path]:
    return [write_png(folder / f"{n:05d}-chest.png", seed=n) for n in range(count)]


def _metadata_row(patient: str, finding: str, name: str) -> str:
    """A row as a public chest X-ray data set's metadata.csv has them."""
    return (f"{patient},0,M,65,{finding},Y,Y,PA,X-ray,2020,Somewhere,images,{name},10.1/x,https://x.org/a,"
            "CC BY,\"a note, with a comma\"")


def _indexed(cli: Cli, tiny_model: Path, folder: Path, store: Path) -> None:
    cli("index", folder, "--store", store, "--model", tiny_model, "--json", "--workers", "0")


def test_a_data_sets_own_metadata_csv_imports_in_one_command(cli: Cli, tiny_model: Path, tmp_path: Path) -> None:
    images, store = tmp_path / "images", tmp_path / "store"
    names = [path.name for path in _pngs(images, 5)]
    _indexed(cli, tiny_model, images, store)
    sheet = tmp_path / "metadata.csv"
    rows = [_metadata_row(f"p{n}", "Pneumonia", name) for n, name in enumerate(names)]
    rows += [_metadata_row(f"q{n}", "No Finding", f"not-indexed-{n:03d}.jpg") for n in range(200)]
    sheet.write_text("\n".join([COLUMNS, *rows]) + "\n")

    done = cli("import-metadata", sheet, "--store", store)
    assert "key column imagename (found: its values name indexed files)" in done.stdout
    assert "5 of 205 rows matched 5 images" in done.stdout and "csv_modality (text)" in done.stdout
    assert "column modality imported as csv_modality" in done.stderr and "--rename modality=NEW" in done.stderr
    assert "200 rows name files not in the store (list them: --verbose or --unmatched FILE)" in done.stderr
    assert "not-indexed" not in done.stderr and len(done.stderr.splitlines()) == 2
    found = cli("search", "--where", "finding = 'Pneumonia'", "--where", "csv_modality = 'X-ray'", "--count",
                "--store", store, "--json")
    assert found["count"] == 5

    listed = cli("import-metadata", sheet, "--verbose", "--store", store)
    assert all(f"not-indexed-{n:03d}.jpg" in listed.stderr for n in range(200))
    written = cli("import-metadata", sheet, "--unmatched", tmp_path / "missing.txt", "--store", store)
    assert f"(listed in {tmp_path / 'missing.txt'})" in written.stderr
    assert (tmp_path / "missing.txt").read_text().split() == [f"not-indexed-{n:03d}.jpg" for n in range(200)]
    again = cli("index", images, "--metadata", sheet, "--store", store, "--workers", "0")  # index has no --verbose
    assert f"200 rows name files not in the store (list them: medsearch import-metadata {sheet} --verbose)" \
        in again.stderr


def test_the_key_is_suggested_exactly_when_it_names_no_indexed_file(cli: Cli, tiny_model: Path,
                                                                   tmp_path: Path) -> None:
    images, store = tmp_path / "images", tmp_path / "store"
    names = [path.name for path in _pngs(images, 3)]
    _indexed(cli, tiny_model, images, store)
    elsewhere = tmp_path / "other.csv"
    elsewhere.write_text("\n".join([COLUMNS, _metadata_row("p1", "x", "elsewhere.png")]) + "\n")
    refused = cli("import-metadata", elsewhere, "--store", store, "--json", expect=2)["error"]["message"]
    assert "no column of" in refused and refused.endswith("then give --key imagename")

    wrong_key = tmp_path / "wrong.csv"  # a `path` column naming nothing, while imagename does
    wrong_key.write_text("path,imagename,finding\n" + "".join(f"nowhere/{n},{n},a\n" for n in names))
    report = cli("import-metadata", wrong_key, "--store", store, "--json")
    assert report["matched_rows"] == 0 and report["hint"].endswith("those of 'imagename' do: --key imagename")
    assert cli("import-metadata", wrong_key, "--key", "imagename", "--store", store, "--json")["matched_rows"] == 3


def test_unknown_truth_is_skipped_per_label_and_counted(cli: Cli, tiny_model: Path, tmp_path: Path) -> None:
    images, store = tmp_path / "images", tmp_path / "store"
    names = [path.name for path in _pngs(images, 6)]
    _indexed(cli, tiny_model, images, store)
    truth = tmp_path / "truth.csv"
    cells = [("1", "-1"), ("0", "1"), ("", "0"), ("NA", "1"), ("1", "0"), ("0", "-1.0")]
    truth.write_text("imagename,effusion,nodule\n" + "".join(f"{n},{a},{b}\n" for n, (a, b) in zip(names, cells,
                                                                                                  strict=True)))
    report = cli("evaluate", "--truth", truth, "--labels", "effusion;nodule", "--store", store, "--json")
    effusion, nodule = report["labels"]["effusion"], report["labels"]["nodule"]
    assert (effusion["positives"], effusion["negatives"], effusion["unknown"]) == (2, 2, 2)
    assert (nodule["positives"], nodule["negatives"], nodule["unknown"]) == (2, 2, 2)
    assert effusion["auc"] is not None and report["images"] == 6
    text = cli("evaluate", "--truth", truth, "--labels", "effusion;nodule", "--store", store)
    assert "unknown truth (blank, NA or -1) left out of that label's figures: effusion 2 images, nodule 2 images" \
        in text.stderr
    truth.write_text(f"imagename,effusion\n{names[0]},maybe\n{names[1]},1\n")
    refused = cli("evaluate", "--truth", truth, "--labels", "effusion", "--store", store, "--json", expect=2)
    assert "blank, NA or -1 for unknown" in refused["error"]["message"]


def test_a_split_by_a_field_some_images_lack(cli: Cli, tiny_model: Path, tmp_path: Path) -> None:
    images, store = tmp_path / "images", tmp_path / "store"
    names = [path.name for path in _pngs(images, 6)]
    _indexed(cli, tiny_model, images, store)
    sheet = tmp_path / "patients.csv"
    sheet.write_text("file,patientid\n" + "".join(f"{name},P{n // 2}\n" for n, name in enumerate(names[:4])))
    cli("import-metadata", sheet, "--store", store, "--json")

    refused = cli("split", "fold", "--by", "patientid", "--ratios", "50/50", "--store", store, "--json", expect=2)
    message = refused["error"]["message"]
    assert message.startswith("2 of 6 images have no 'patientid' value") and "--missing leave-out" in message
    left = cli("split", "fold", "--by", "patientid", "--ratios", "50/50", "--missing", "leave-out", "--store", store)
    assert "2 images without a 'patientid' value: left out (no split value)" in left.stderr
    assert "train: 2 images, 1 patientid group" in left.stdout
    assert cli("search", "--where", "fold = 'train' or fold = 'test'", "--count", "--store", store,
               "--json")["count"] == 4

    alone = cli("split", "fold", "--by", "patientid", "--ratios", "50/50", "--missing", "alone", "--store", store,
                "--json")
    assert alone["without_group"] == 2 and sum(alone["images"].values()) == 6
    audit = cli("audit", "--split-field", "fold", "--patient", "patientid", "--threshold", "0.999", "--store",
                store, "--json")
    assert audit["without_patient"] == 2 and audit["summary"]["same_patient"] == 0
    text = cli("audit", "--split-field", "fold", "--patient", "patientid", "--threshold", "0.999", "--store", store)
    assert "0 patients in two splits" in text.stdout
    assert "2 images without a patient value: not checked" in text.stderr


def test_a_failed_first_index_leaves_no_store(cli: Cli, tiny_model: Path, tmp_path: Path) -> None:
    images, store = tmp_path / "images", tmp_path / "medsearch-store"
    _pngs(images, 2)
    failed = cli("index", images, "--store", store, "--model", tmp_path / "no-model", "--workers", "0", expect=3)
    assert "does not exist" in failed.stderr and not store.exists()

    _indexed(cli, tiny_model, images, store)  # a store with images is kept whatever fails later
    write_png(images / "new.png", seed=99)
    cli("index", images, "--store", store, "--model", tmp_path / "no-model", "--workers", "0", expect=3)
    assert (store / "medsearch.db").exists()
    assert cli("info", "--store", store, "--json")["images"] == 2


def test_out_of_domain_use_is_said(cli: Cli, tiny_model: Path, tmp_path: Path) -> None:
    images, store = tmp_path / "images", tmp_path / "store"
    _pngs(images, 3)
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(pydicom_file(name), images / name)
    _indexed(cli, tiny_model, images, store)

    done = cli("classify", "--labels-set", "cxr-findings", "--all", "--store", store)
    assert ("warning: cxr-findings is made for CR/DX images; 2 of 5 are another modality (1 CT, 1 MR): their "
            "scores mean little; 3 have no modality recorded") in done.stderr
    assert "Pleural effusion" in done.stdout and "pleural_effusion" not in done.stdout
    assert cli("classify", "--labels-set", "cxr-findings", "--all", "--store", store, "--json")["warning"]
    quiet = cli("classify", "--labels-set", "cxr-findings", "--where", "modality is null", "--store", store)
    assert "warning" not in quiet.stderr

    units = cli("search", "a chest x-ray", "--unit", "series", "--store", store)
    assert ("note: 3 images without a series (no DICOM series UID, e.g. PNG or JPEG files) are left out of "
            "--unit series results") in units.stderr
    only_dicom = cli("search", "a chest x-ray", "--unit", "study", "--where", "modality = 'CT'", "--store", store)
    assert "left out" not in only_dicom.stderr


def test_wording_of_counts_upgrade_and_load(cli: Cli, tiny_model: Path, tmp_path: Path) -> None:
    from medsearch.cli.common import plural

    assert [plural(1, "image"), plural(4, "series"), plural(2, "study"), plural(0, "row")] == [
        "1 image", "4 series", "2 studies", "0 rows"]
    images, store = tmp_path / "images", tmp_path / "store"
    _pngs(images, 1)
    _indexed(cli, tiny_model, images, store)
    assert "of 1 image in" in cli("reindex", "--index-type", "flat", "--store", store).stdout
    upgraded = cli("upgrade", "--store", store, "--model", tiny_model, "--workers", "0")
    assert "nothing to upgrade: every image is at preprocessing version" in upgraded.stdout
    assert "upgraded" not in upgraded.stdout and "moved" not in upgraded.stdout

    fresh = tmp_path / "fresh"
    done = run_without(["ray", "ray.data"], "load", str(tmp_path / "shards"), "--store", str(fresh))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "loading shards (`medsearch load`) needs Ray Data" in done.stderr and "--executor" not in done.stderr
    assert not fresh.exists()


@pytest.mark.parametrize("name", ["cxr-findings", "skin-lesions"])
def test_builtin_label_sets_have_display_names_and_modalities(name: str) -> None:
    from medsearch.labels.labelsets import load_label_set

    labels = load_label_set(name)
    assert labels.modalities and all(label.display and label.display != label.name for label in labels.labels
                                     if "_" in label.name)

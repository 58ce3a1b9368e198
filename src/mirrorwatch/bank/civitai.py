"""Civitai API JSON (model, model-version and by-hash responses) turned into bank records."""

from __future__ import annotations

from typing import Any

from mirrorwatch.bank.records import Record, RowProblem
from mirrorwatch.bank.urls import MAX_CIVITAI_ID
from mirrorwatch.hashing.forms import civitai_forms

_MODEL_FILE_TYPES = {"model", "pruned model", "negative", "archive", ""}


def is_civitai_object(obj: dict[str, Any]) -> bool:
    """Whether a JSON object looks like a Civitai model or model version (its fields are checked
    later, per item: anything can be in them)."""
    return ("modelVersions" in obj and "id" in obj) or ("files" in obj and ("modelId" in obj or "model" in obj))


def civitai_id(value: Any, what: str, *, required: bool) -> int | None:
    """A Civitai id: a positive integer below 2**53 (JSON booleans, strings, floats, negative and
    absurd numbers refused as the row's problem)."""
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowProblem(f"{what} is not an integer id: {_shown(value)}")
    if not 0 < value < MAX_CIVITAI_ID:
        raise RowProblem(f"{what} {_shown(value)} is not a plausible Civitai id")
    return value


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else type(value).__name__ if isinstance(value, dict | list) else repr(value)
    return repr(text[:40]) if isinstance(value, str) else text[:40]


def _text(value: Any) -> str:
    """A string field, or "" when the JSON holds something else there."""
    return value.strip() if isinstance(value, str) else ""


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def version_record(version: dict[str, Any], model: dict[str, Any], number: int, *,
                   origin: str = "civitai") -> Record:
    """One record from a Civitai model-version object (`model`: the enclosing model answer, or {})."""
    model_id = civitai_id(version.get("modelId", model.get("id")), "modelId", required=False)
    version_id = civitai_id(version.get("id"), "model version id", required=True)
    vmodel = _object(version.get("model"))
    mname = _text(vmodel.get("name")) or _text(model.get("name"))
    vname = _text(version.get("name"))
    name = f"{mname} {vname}".strip() if vname and vname not in mname else (mname or vname)
    rec = Record(row=number, name=name, model_id=model_id, version_id=version_id,
                 kind=_text(vmodel.get("type")) or _text(model.get("type")) or None)
    rec.url = (f"https://civitai.com/models/{model_id}?modelVersionId={version_id}" if model_id
               else f"https://civitai.com/model-versions/{version_id}")
    notes = []
    if _text(version.get("baseModel")):
        notes.append(f"base: {_text(version['baseModel'])}")
    published = _text(version.get("publishedAt")) or _text(version.get("createdAt"))
    if published:
        notes.append(f"published: {published}")
    rec.notes = "; ".join(notes) or None
    files = version.get("files") or []
    if not isinstance(files, list):
        raise RowProblem("'files' is not a list")
    for f in files:
        if not isinstance(f, dict):
            continue
        if _text(f.get("type")).lower() not in _MODEL_FILE_TYPES:
            continue
        hashes = f.get("hashes") or {}
        if not isinstance(hashes, dict):
            raise RowProblem("'hashes' is not an object")
        known = civitai_forms()  # Civitai's hash labels, lower case -> our form names
        for label, value in hashes.items():
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            form = known.get(str(label).lower())
            if form is None:  # never bank the file while dropping one of its hashes
                raise RowProblem(f"file {_text(f.get('name'))[:80]!r}: hash {str(label)[:40]!r} is not a form "
                                 f"this importer knows ({', '.join(sorted(known))})")
            if not isinstance(value, str):
                raise RowProblem(f"file {_text(f.get('name'))[:80]!r}: hash {str(label)[:40]} is not text")
            rec.add_hash(form, value, origin=origin)
        if _text(f.get("name")):
            rec.extra.append(("file_name", _text(f["name"]), origin))
        size_kb = f.get("sizeKB")
        if size_kb is not None:  # KiB (bytes / 1024): see bank/sizes.py for the evidence; 0 = unknown
            if isinstance(size_kb, bool) or not isinstance(size_kb, int | float):
                raise RowProblem(f"file {_text(f.get('name'))[:80]!r}: sizeKB is not a number: {_shown(size_kb)}")
            try:
                rec.add_size(size_kb, "kib", origin)
            except RowProblem as exc:
                raise RowProblem(f"file {_text(f.get('name'))[:80]!r}: {exc}") from None
    words = version.get("trainedWords") or []
    if not isinstance(words, list):
        raise RowProblem("'trainedWords' is not a list")
    for word in words:
        if _text(word):
            rec.extra.append(("trigger_word", _text(word), origin))
    return rec


def _summary_record(obj: dict[str, Any], number: int) -> Record:
    """A version summarised by civitai-model-json (`dist/*.json`): modelId, modelName, versionId,
    versionName, files (names), hashes (SHA256s of those files), metas/workflows (images: not read)."""
    model_id = civitai_id(obj.get("modelId"), "modelId", required=False)
    version_id = civitai_id(obj.get("versionId"), "versionId", required=True)
    mname, vname = _text(obj.get("modelName")), _text(obj.get("versionName"))
    rec = Record(row=number, name=f"{mname} {vname}".strip() if vname not in mname else mname,
                 model_id=model_id, version_id=version_id)
    rec.url = (f"https://civitai.com/models/{model_id}?modelVersionId={version_id}" if model_id
               else f"https://civitai.com/model-versions/{version_id}")
    for value in obj["hashes"]:
        if not isinstance(value, str):
            raise RowProblem(f"a hash is not text: {_shown(value)}")
        rec.add_hash("hash", value, origin="civitai-model-json")
    for name in obj.get("files") or []:
        if _text(name):
            rec.extra.append(("file_name", _text(name), "civitai-model-json"))
    return rec


def civitai_records(items: list[dict[str, Any]]) -> tuple[list[Record], list[tuple[int, str]]]:
    """Records from Civitai objects; problems as (item number, reason)."""
    records: list[Record] = []
    problems: list[tuple[int, str]] = []
    for number, obj in enumerate(items, start=1):
        try:
            if obj.get("skeleton_file") is True:
                raise RowProblem("a Civitai Helper placeholder (\"skeleton_file\"): Civitai did not know the "
                                 "model when it was scanned, so the file holds no ids or hashes")
            if "error" in obj and len(obj) <= 2:
                raise RowProblem(f"Civitai error response: {str(obj.get('error'))[:200]}")
            if "modelVersions" in obj:
                versions = obj.get("modelVersions")
                if not isinstance(versions, list) or not versions:
                    raise RowProblem("model without modelVersions")
                for v in versions:
                    if not isinstance(v, dict):
                        raise RowProblem("a model version is not an object")
                    records.append(version_record(v, obj, number))
            elif "versionId" in obj and "id" not in obj and isinstance(obj.get("hashes"), list):
                records.append(_summary_record(obj, number))
            elif is_civitai_object(obj):
                records.append(version_record(obj, {}, number))
            else:
                raise RowProblem("not a Civitai model or model-version object")
        except RowProblem as exc:
            problems.append((number, str(exc)))
    return records, problems

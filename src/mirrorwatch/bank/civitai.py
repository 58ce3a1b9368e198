"""Civitai API JSON (model, model-version and by-hash responses) turned into bank records."""

from __future__ import annotations

from typing import Any

from mirrorwatch.bank.records import Record, RowProblem
from mirrorwatch.hashing.forms import civitai_forms

_MODEL_FILE_TYPES = {"model", "pruned model", "negative", "archive", ""}


def is_civitai_object(obj: dict[str, Any]) -> bool:
    return ("modelVersions" in obj and "id" in obj) or ("files" in obj and ("modelId" in obj or "model" in obj))


def _version_records(version: dict[str, Any], model: dict[str, Any], number: int) -> Record:
    model_id = version.get("modelId", model.get("id"))
    version_id = version.get("id")
    if not isinstance(version_id, int) or (model_id is not None and not isinstance(model_id, int)):
        raise RowProblem("model version without an integer id / modelId")
    mname = (version.get("model") or {}).get("name") or model.get("name") or ""
    vname = version.get("name") or ""
    name = f"{mname} {vname}".strip() if vname and vname not in mname else (mname or vname)
    rec = Record(row=number, name=name, model_id=model_id, version_id=version_id,
                 kind=(version.get("model") or {}).get("type") or model.get("type"))
    rec.url = (f"https://civitai.com/models/{model_id}?modelVersionId={version_id}" if model_id
               else f"https://civitai.com/model-versions/{version_id}")
    notes = []
    if version.get("baseModel"):
        notes.append(f"base: {version['baseModel']}")
    if version.get("publishedAt") or version.get("createdAt"):
        notes.append(f"published: {version.get('publishedAt') or version.get('createdAt')}")
    rec.notes = "; ".join(notes) or None
    files = version.get("files") or []
    if not isinstance(files, list):
        raise RowProblem("'files' is not a list")
    for f in files:
        if not isinstance(f, dict):
            continue
        if str(f.get("type") or "").lower() not in _MODEL_FILE_TYPES:
            continue
        hashes = f.get("hashes") or {}
        if not isinstance(hashes, dict):
            raise RowProblem("'hashes' is not an object")
        known = civitai_forms()  # Civitai's hash labels, lower case -> our form names
        for label, value in hashes.items():
            form = known.get(str(label).lower())
            if form and isinstance(value, str) and value.strip():
                rec.add_hash(form, value, origin="civitai")
        if isinstance(f.get("name"), str) and f["name"].strip():
            rec.extra.append(("file_name", f["name"].strip()[:200], "civitai"))
    for word in version.get("trainedWords") or []:
        if isinstance(word, str) and word.strip():
            rec.extra.append(("trigger_word", word.strip()[:200], "civitai"))
    return rec


def civitai_records(items: list[dict[str, Any]]) -> tuple[list[Record], list[tuple[int, str]]]:
    """Records from Civitai objects; problems as (item number, reason)."""
    records: list[Record] = []
    problems: list[tuple[int, str]] = []
    for number, obj in enumerate(items, start=1):
        try:
            if "error" in obj and len(obj) <= 2:
                raise RowProblem(f"Civitai error response: {obj.get('error')}")
            if "modelVersions" in obj:
                versions = obj.get("modelVersions")
                if not isinstance(versions, list) or not versions:
                    raise RowProblem("model without modelVersions")
                for v in versions:
                    if not isinstance(v, dict):
                        raise RowProblem("a model version is not an object")
                    records.append(_version_records(v, obj, number))
            elif is_civitai_object(obj):
                records.append(_version_records(obj, {}, number))
            else:
                raise RowProblem("not a Civitai model or model-version object")
        except RowProblem as exc:
            problems.append((number, str(exc)))
    return records, problems

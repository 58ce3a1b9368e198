"""Hash lists users already have, read as bank records (issue 8).

Recognised from their shape, whatever the file is called:

- AUTOMATIC1111 ``cache.json`` (``modules/hashes.py``): sections ``hashes`` (SHA-256 of the whole
  file) and ``hashes-addnet`` (SHA-256 of the bytes after a safetensors header: AutoV3), each
  ``{"checkpoint/NAME" | "lora/NAME" | "textual_inversion/NAME": {"mtime": float, "sha256": hex}}``.
- ``sha256sum`` / ``shasum -a 256`` output (``HEX  name``, ``HEX *name``), BSD/``--tag`` lines
  (``SHA256 (name) = HEX``) and ``.sha256`` sidecars (one ``HEX`` line, named after the file).
- ComfyUI-Manager model lists (``{"models": [{"name", "type", "base", "save_path", "description",
  "reference", "filename", "url", "size"?, "sha256"?}]}``).
- CivArchive answers (``{"data": ...}``): a model answer (``version`` with ``files[].sha256`` and
  ``mirrors[]``), the page-data shape (``model.version``), a by-hash answer (``files[]`` carrying
  ``model_id``/``model_version_id``) and lists of those.

Civitai's own answers (and Civitai Helper's ``.civitai.info`` files, which are Civitai answers) are
read by :mod:`mirrorwatch.bank.civitai`. A JSON document of none of these shapes that carries fields
the importer would drop is refused by :func:`unread_json_fields`, naming what it looks like."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from typing import Any

from mirrorwatch.bank.civitai import civitai_id, version_record
from mirrorwatch.bank.records import Record, RowProblem
from mirrorwatch.bank.urls import CivitaiRef, parse_civitai_url
from mirrorwatch.errors import InvalidUrl, SheetError

#: The formats this module reads (Sheet.fmt values), for the importer's dispatch.
LIST_FORMATS = ("a1111-cache", "sha256sum", "comfyui-model-list", "civarchive-json")

_A1111_SECTIONS = {"hashes": "sha256", "hashes-addnet": "autov3_full"}
_A1111_KINDS = {"checkpoint": "Checkpoint", "lora": "LORA", "textual_inversion": "TextualInversion",
                "hypernet": "Hypernetwork", "hypernetwork": "Hypernetwork"}
_MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")
_TITLE_HASH = re.compile(r"\s*\[[0-9a-fA-F]{8,64}\]\s*$")  # "name [6ce0161689]": A1111's title suffix

# --- shapes ---------------------------------------------------------------------------------------


def json_shape(doc: Any) -> str | None:
    """The list format a parsed JSON document has, or None."""
    if not isinstance(doc, dict):
        return None
    if any(isinstance(doc.get(s), dict) for s in _A1111_SECTIONS):
        return "a1111-cache"
    models = doc.get("models")
    if isinstance(models, list) and models and all(isinstance(m, dict) for m in models) \
            and any("filename" in m or "save_path" in m for m in models):
        return "comfyui-model-list"
    data = doc.get("data")
    if isinstance(data, dict | list) and set(doc) <= {"data", "success", "error", "message", "status", "meta"}:
        return "civarchive-json"
    version = doc.get("version")
    if isinstance(version, dict) and isinstance(version.get("files"), list):
        return "civarchive-json"  # a CivArchive model answer saved without its "data" wrapper
    return None


def list_records(fmt: str, raw: Any) -> tuple[list[Record], list[tuple[int, str]], int]:
    """Records of a list read by :func:`json_shape` or :func:`sha256sum_rows`: (records, problems, rows)."""
    return gather(iter_list_records(fmt, raw))


def gather(items: Iterable[Record | tuple[int, str] | int]) -> tuple[list[Record], list[tuple[int, str]], int]:
    """A stream of records, (row, problem) pairs and a closing row count, held in memory:
    (records, problems, rows)."""
    records: list[Record] = []
    problems: list[tuple[int, str]] = []
    count = 0
    for item in items:
        if isinstance(item, Record):
            records.append(item)
        elif isinstance(item, int):
            count = item
        else:
            problems.append(item)
    return records, problems, count


def iter_list_records(fmt: str, raw: Any) -> Iterator[Record | tuple[int, str] | int]:
    """list_records in the list's order: each Record, each (row, problem), then the number of rows."""
    rows = {"a1111-cache": _a1111_rows, "sha256sum": _sha256sum_items, "comfyui-model-list": _comfyui_rows,
            "civarchive-json": _civarchive_rows}[fmt](raw)
    count = 0
    for number, build in rows:
        count += 1
        try:
            got = build()
        except RowProblem as exc:
            yield number, str(exc)
            continue
        yield from (got if isinstance(got, list) else [got])
    yield count


def _file_name(path: str) -> str:
    return re.split(r"[\\/]", path.strip())[-1]


def _stem(file_name: str) -> str:
    low = file_name.lower()
    for suffix in _MODEL_SUFFIXES:
        if low.endswith(suffix) and len(file_name) > len(suffix):
            return file_name[: -len(suffix)]
    return file_name


# --- AUTOMATIC1111 cache.json ---------------------------------------------------------------------


def _a1111_rows(doc: dict[str, Any]) -> Iterator[tuple[int, Any]]:
    """One row per title: a LoRA's whole-file hash (``hashes``) and its AutoV3 (``hashes-addnet``)
    are the same file, so they make one record."""
    titles: dict[str, list[tuple[str, str, Any]]] = {}
    number = 0
    for section, form in _A1111_SECTIONS.items():
        entries = doc.get(section)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            number += 1
            yield number, _fail(f"cache.json section {section!r} is not an object of titles")
            continue
        for title, value in entries.items():
            titles.setdefault(str(title), []).append((section, form, value))
    for title, found in titles.items():
        number += 1
        yield number, (lambda n=number, t=title, f=found: _a1111_record(n, t, f))


def _fail(reason: str):
    def build():
        raise RowProblem(reason)
    return build


def _a1111_record(number: int, title: str, found: list[tuple[str, str, Any]]) -> Record:
    shown = title[:120]
    prefix, _, rest = title.partition("/")
    if not rest:
        prefix, rest = "", title
    file_name = _file_name(_TITLE_HASH.sub("", rest))
    rec = Record(row=number, name=_stem(file_name)[:500], kind=_A1111_KINDS.get(prefix, prefix or None))
    for section, form, value in found:
        if not isinstance(value, dict):
            raise RowProblem(f"{section} {shown!r}: not a {{mtime, sha256}} object")
        sha = value.get("sha256")
        if sha is None or sha == "":
            raise RowProblem(f"{section} {shown!r}: no sha256 (AUTOMATIC1111 had not hashed this file)")
        if not isinstance(sha, str):
            raise RowProblem(f"{section} {shown!r}: sha256 is not text")
        try:
            rec.add_hash(form, sha, origin=f"a1111:{section}")
        except RowProblem as exc:
            raise RowProblem(f"{section} {shown!r}: {exc}") from None
    if file_name:
        rec.extra.append(("file_name", file_name, "a1111"))
    return rec


# --- sha256sum / shasum / .sha256 sidecars ---------------------------------------------------------

_GNU = re.compile(r"^(\\?)([0-9a-fA-F]+) [ *^U]?(.*)$")
_BSD = re.compile(r"^(\w[\w-]*) ?\((.*)\) ?= ?([0-9a-fA-F]+)$")
_BARE = re.compile(r"^([0-9a-fA-F]{64})$")
_OTHER_DIGESTS = {32: "MD5 (md5sum)", 40: "SHA-1 (sha1sum / shasum)", 56: "SHA-224", 96: "SHA-384",
                  128: "SHA-512 (sha512sum / shasum -a 512)"}


def checksum_kind(line: str) -> str | None:
    """What a first line of a checksum list is: "sha256sum", another digest's name, or None."""
    line = line.strip().lstrip("\ufeff")
    gnu = _GNU.match(line)
    bsd = _BSD.match(line)
    if gnu and gnu.group(3).strip():
        digest = gnu.group(2)
    elif bsd:
        if bsd.group(1).upper() not in ("SHA256", "SHA2-256", "SHA-256") and len(bsd.group(3)) != 64:
            return f"{bsd.group(1)} checksums"
        digest = bsd.group(3)
    else:
        return None
    if len(digest) == 64:
        return "sha256sum"
    return _OTHER_DIGESTS.get(len(digest))


def sha256sum_rows(lines: Iterable[str], file_name: str, max_rows: int) -> list[tuple[int, str, str]]:
    """(line number, hex, file name) of every line of a sha256sum/shasum/BSD list or a .sha256 sidecar.
    Lines that are none of these are kept with an empty hex so that they are reported by number."""
    return list(iter_sha256sum_rows(lines, file_name, max_rows))


def iter_sha256sum_rows(lines: Iterable[str], file_name: str, max_rows: int) -> Iterator[tuple[int, str, str]]:
    """sha256sum_rows, one line at a time (the importer streams big lists)."""
    kept = 0
    sidecar_name = _stem(file_name[: -len(".sha256")]) if file_name.lower().endswith(".sha256") else ""
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n").lstrip("\ufeff") if number == 1 else raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if kept >= max_rows:
            raise SheetError(f"the list has over {max_rows:,} lines; split it")
        kept += 1
        line = line.strip()
        bsd = _BSD.match(line)
        gnu = _GNU.match(line)
        if bsd:
            yield (number, bsd.group(3), bsd.group(2))
        elif gnu and gnu.group(3).strip():
            name = gnu.group(3)
            if gnu.group(1):  # GNU escapes "\\" and newlines in names and marks the line with a leading "\"
                name = name.replace("\\n", "\n").replace("\\\\", "\\")
            yield (number, gnu.group(2), name)
        elif _BARE.match(line):
            yield (number, line, sidecar_name)
        else:
            yield (number, "", line[:80])


def _sha256sum_items(items: Iterable[tuple[int, str, str]]) -> Iterator[tuple[int, Any]]:
    for number, digest, name in items:
        yield number, (lambda n=number, d=digest, f=name: _sha256sum_record(n, d, f))


def _sha256sum_record(number: int, digest: str, name: str) -> Record:
    if not digest:
        raise RowProblem(f"line {number} is not a checksum line (HEX  name, HEX *name or SHA256 (name) = HEX): "
                         f"{name!r}")
    if len(digest) != 64:
        what = _OTHER_DIGESTS.get(len(digest), f"{len(digest)}-hex")
        raise RowProblem(f"line {number}: a {what} checksum, not SHA-256")
    file_name = _file_name(name)
    rec = Record(row=number, name=_stem(file_name)[:500])
    rec.add_hash("sha256", digest, origin="sha256sum")
    if file_name:
        rec.extra.append(("file_name", file_name, "sha256sum"))
    return rec


# --- ComfyUI-Manager model-list.json --------------------------------------------------------------

_COMFY_READ = {"name", "type", "base", "save_path", "description", "reference", "filename", "url", "size",
               "sha256"}


def _comfyui_rows(doc: dict[str, Any]) -> Iterator[tuple[int, Any]]:
    for number, item in enumerate(doc["models"], start=1):
        yield number, (lambda n=number, i=item: _comfyui_record(n, i))


def _comfyui_record(number: int, item: dict[str, Any]) -> Record:
    unread = [k for k in item if k not in _COMFY_READ and _looks_like_hash_or_id(k)]
    if unread:
        raise RowProblem(f"model-list entry with fields this importer does not read: {', '.join(unread)[:200]}")
    rec = Record(row=number, name=_text(item.get("name"))[:500], kind=_text(item.get("type")) or None)
    notes = []
    for key in ("url", "reference"):
        url = _text(item.get(key))
        if not url:
            continue
        try:
            ref = parse_civitai_url(url)
        except InvalidUrl:
            notes.append(f"{key}: {url}")
            continue
        rec.model_id = rec.model_id or ref.model_id
        rec.version_id = rec.version_id or ref.version_id
        if key == "url" or rec.url is None:
            rec.url = ref.url
    if rec.model_id or rec.version_id:
        rec.url = CivitaiRef(rec.model_id, rec.version_id).url
    sha = item.get("sha256")
    if sha not in (None, ""):
        if not isinstance(sha, str):
            raise RowProblem("sha256 is not text")
        rec.add_hash("sha256", sha, origin="comfyui-manager")
    size = item.get("size")
    if isinstance(size, str | int | float) and not isinstance(size, bool):
        # a display size ("335.3MB", "1.72GB") or bytes (bank/sizes.py). It is the list's label for
        # people, not a hash: one that is not a size ("N/A", "varies") is not banked, the row still is
        with contextlib.suppress(RowProblem):
            rec.add_size(size, "", "comfyui-manager")
    if _text(item.get("base")):
        notes.append(f"base: {_text(item['base'])}")
    rec.notes = "; ".join(notes)[:2000] or None
    file_name = _file_name(_text(item.get("filename")))
    if file_name:
        rec.extra.append(("file_name", file_name, "comfyui-manager"))
    if not (rec.name or file_name):
        raise RowProblem("model-list entry without a name or filename")
    rec.name = rec.name or _stem(file_name)
    return rec


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


# --- CivArchive -----------------------------------------------------------------------------------

_LIST_KEYS = ("results", "models", "items", "hits")


def _civarchive_rows(doc: dict[str, Any]) -> Iterator[tuple[int, Any]]:
    data = doc.get("data", doc) if set(doc) <= {"data", "success", "error", "message", "status", "meta"} else doc
    items: list[Any] = data if isinstance(data, list) else [data]
    if isinstance(data, dict):
        for key in _LIST_KEYS:  # a search answer: a list of model objects under one key
            if isinstance(data.get(key), list):
                items = data[key]
                break
    for number, item in enumerate(items, start=1):
        yield number, (lambda n=number, i=item: _civarchive_records(n, i))


def _civarchive_records(number: int, item: Any) -> list[Record]:
    if not isinstance(item, dict):
        raise RowProblem("a CivArchive result is not an object")
    context = {k: v for k, v in item.items() if k not in ("version", "model")}
    version = item.get("version")
    model = item.get("model")
    if isinstance(model, dict):  # the page-data shape: the version sits inside the model
        context = {**{k: v for k, v in model.items() if k != "version"}, **context}
        if not isinstance(version, dict):
            version = model.get("version")
    if isinstance(version, dict):
        return [_civarchive_version(number, version, context)]
    files = item.get("files")
    if isinstance(files, list) and files:  # the by-hash answer: files that name their version
        return [_civarchive_file(number, f) for f in files]
    raise RowProblem("a CivArchive answer without a version or files (nothing to bank: "
                     f"fields {', '.join(list(item)[:12])})")


def _civarchive_version(number: int, version: dict[str, Any], context: dict[str, Any]) -> Record:
    version_id = version.get("civitai_model_version_id", version.get("id"))
    model_id = version.get("civitai_model_id", version.get("modelId", context.get("civitai_model_id",
                                                                                   context.get("id"))))
    civitai_shape = {
        "id": version_id, "modelId": model_id, "name": version.get("name"),
        "baseModel": version.get("baseModel"), "publishedAt": version.get("publishedAt"),
        "createdAt": version.get("createdAt"),
        "model": {"name": context.get("name"), "type": context.get("type")},
        "trainedWords": _as_list(version.get("trainedWords", version.get("trigger"))),
        "files": [],
    }
    files = version.get("files") or []
    if not isinstance(files, list):
        raise RowProblem("'files' is not a list")
    mirrors: list[str] = []
    for f in files:
        if not isinstance(f, dict):
            continue
        hashes = dict(f["hashes"]) if isinstance(f.get("hashes"), dict) else {}
        if f.get("sha256") not in (None, ""):
            hashes["SHA256"] = f["sha256"]
        name = f.get("name")
        for m in _as_list(f.get("mirrors")):
            if isinstance(m, dict):
                if not name and isinstance(m.get("filename"), str):
                    name = m["filename"]
                if isinstance(m.get("url"), str) and m["url"].strip():
                    mirrors.append(m["url"].strip())
        civitai_shape["files"].append({"type": f.get("type") or "Model", "name": name, "hashes": hashes})
    rec = version_record(civitai_shape, {}, number, origin="civarchive")
    for url in dict.fromkeys(mirrors):
        rec.extra.append(("mirror_url", url[:2000], "civarchive"))
    return rec


def _civarchive_file(number: int, f: Any) -> Record:
    if not isinstance(f, dict):
        raise RowProblem("a CivArchive file is not an object")
    version_id = civitai_id(f.get("model_version_id", f.get("modelVersionId")), "model_version_id",
                            required=False)
    model_id = civitai_id(f.get("model_id", f.get("modelId")), "model_id", required=False)
    rec = Record(row=number, name=_text(f.get("name")), model_id=model_id, version_id=version_id)
    sha = f.get("sha256")
    if sha not in (None, ""):
        if not isinstance(sha, str):
            raise RowProblem("sha256 is not text")
        rec.add_hash("sha256", sha, origin="civarchive")
    if not (rec.version_id or rec.model_id or rec.signals):
        raise RowProblem("a CivArchive file without a version id, model id or sha256")
    if rec.model_id or rec.version_id:
        rec.url = CivitaiRef(rec.model_id, rec.version_id).url
    if rec.name:
        rec.extra.append(("file_name", rec.name, "civarchive"))
    return rec


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# --- what an unread JSON looks like ---------------------------------------------------------------

_HASH_OR_ID = re.compile(r"(^|[^a-z])(sha\d*|md5|hash(es)?|autov\d|blake3?|crc32|ids?|version(s)?|"
                         r"mirrors?|files?|modelversions?)([^a-z]|$)|id$|ids$|hash$", re.IGNORECASE)


def _looks_like_hash_or_id(key: str) -> bool:
    return bool(_HASH_OR_ID.search(str(key)))


def unread_json_fields(items: list[dict[str, Any]], mapped: Iterable[str]) -> str | None:
    """Why a JSON sheet of flat objects cannot be imported as it is, or None: a field that looks like a
    hash or an id but is not one of the columns read, or a nested object or list (read as text it
    would drop the hashes and ids inside it)."""
    mapped = set(mapped)
    unread: dict[str, None] = {}
    nested: dict[str, None] = {}
    for item in items:
        for key, value in item.items():
            if isinstance(value, dict | list) and value:
                nested[key] = None
            elif key not in mapped and _looks_like_hash_or_id(key):
                unread[key] = None
    if not (unread or nested):
        return None
    keys = list(nested) + [k for k in unread if k not in nested]
    looks = _looks_like(items, keys)
    return (f"the JSON has fields this importer does not read: {', '.join(map(str, keys[:12]))[:300]}"
            f"{f' (it looks like {looks})' if looks else ''}; nothing was imported. Readable JSON: Civitai "
            "model/version answers and .civitai.info files, CivArchive answers, AUTOMATIC1111 cache.json, "
            "ComfyUI-Manager model lists, or a list of flat objects with columns such as name, url, sha256")


def _looks_like(items: list[dict[str, Any]], keys: list[str]) -> str:
    first = items[0] if items else {}
    if "data" in first:
        return "an API answer wrapped in 'data', e.g. CivArchive's, of a shape this importer does not know"
    if "modelVersions" in first or "files" in first:
        return "a Civitai answer without the ids Civitai answers carry"
    if any(k in first for k in ("version", "versions", "mirrors", "creator_username", "civitai_model_version_id",
                                "civitai_model_id")):
        return "a CivArchive model or version answer without its 'data' wrapper"
    if "models" in first:
        return "a model list (ComfyUI-Manager's has 'filename' or 'save_path' in each model)"
    if any(str(k).startswith("hashes") for k in keys):
        return "an AUTOMATIC1111 cache.json section that is not 'hashes' or 'hashes-addnet'"
    return ""


"""A bank record: one row of a sheet (or one Civitai version) after validation and normalisation."""

from __future__ import annotations

from dataclasses import dataclass, field

from mirrorwatch.bank.sizes import SIZE_FORM, BadSize, parse_size, size_value
from mirrorwatch.bank.urls import MAX_CIVITAI_ID, CivitaiRef, parse_civitai_url
from mirrorwatch.errors import InvalidHash, InvalidUrl
from mirrorwatch.hashing.forms import (
    FORMS,
    candidate_forms,
    derived_forms,
    form_for_column,
    normalise_hash,
    sheet_forms,
)
from mirrorwatch.text.names import normalise_name


class RowProblem(ValueError):
    """Why a row cannot be used."""


@dataclass
class Record:
    row: int
    name: str = ""
    url: str | None = None
    model_id: int | None = None
    version_id: int | None = None
    kind: str | None = None
    notes: str | None = None
    signals: dict[tuple[str, str], str] = field(default_factory=dict)  # (form, value) -> origin
    extra: list[tuple[str, str, str]] = field(default_factory=list)  # (form, value, origin), non-hash signals

    @property
    def name_norm(self) -> str:
        """normalise_name(name), computed once per name."""
        cached = self.__dict__.get("_norm")
        if cached is not None and cached[0] is self.name:
            return cached[1]
        norm = normalise_name(self.name)
        self.__dict__["_norm"] = (self.name, norm)
        return norm

    def set_name_norm(self, norm: str) -> None:
        """Take the normalised name computed elsewhere (the sheet reader's process) for the current name."""
        self.__dict__["_norm"] = (self.name, norm)

    sha256: str | None = None  # the first SHA256 added (the entry's identity when it has no version id)

    def add_hash(self, form: str, raw: str, origin: str) -> None:
        """Validate and add a hash of a known form ("hash" = any form, classified by length)."""
        try:
            value = normalise_hash(raw)
        except InvalidHash as exc:
            raise RowProblem(str(exc)) from None
        if form == "hash":
            forms = candidate_forms(value)
            form = forms[0]  # 64 hex in a sheet is a SHA256, 8 hex an AutoV1 (Civitai's "short hash")
        else:
            try:
                form = form_for_column(form, value)  # a 64-hex AutoV3 is the full one
            except InvalidHash as exc:
                raise RowProblem(str(exc)) from None
        self.signals.setdefault((form, value), origin)
        if form == "sha256" and self.sha256 is None:
            self.sha256 = value
        for dform, dvalue in derived_forms(form, value).items():
            if not FORMS[dform].stored_when_derived:
                continue  # answered from its source by prefix at lookup time: no row needed
            self.signals.setdefault((dform, dvalue), "derived")

    def add_size(self, raw: str | float | int, unit: str, origin: str) -> None:
        """Add a banked file size (bank/sizes.py: "N" or "LO-HI" bytes); zero or blank is "unknown"."""
        try:
            bounds = parse_size(raw, unit)
        except BadSize as exc:
            raise RowProblem(str(exc)) from None
        if bounds is not None:
            value = size_value(bounds)
            if not any(f == SIZE_FORM and v == value for f, v, _ in self.extra):
                self.extra.append((SIZE_FORM, value, origin))

    def identity_keys(self) -> list[str]:
        """Keys by which this record may already be in a bank, strongest first."""
        cached = self.__dict__.get("_keys")
        if cached is not None:
            return cached
        keys = []
        if self.version_id:
            keys.append(f"v:{self.version_id}")
        sha = self.sha256
        if sha:
            keys.append(f"sha256:{sha}")
        if self.model_id and not self.version_id:
            keys.append(f"m:{self.model_id}")
        if not keys and self.name_norm:
            keys.append(f"n:{self.name_norm}")
        self.__dict__["_keys"] = keys
        return keys


def record_from_row(number: int, values: dict[str, str], origin: str) -> Record:
    """Validate one sheet row; raise RowProblem with the reason when it cannot be used."""
    rec = Record(row=number)
    rec.name = " ".join((values.get("name") or "").split())[:500]
    rec.notes = (values.get("notes") or "").strip() or None
    rec.kind = (values.get("kind") or "").strip() or None
    url = (values.get("url") or "").strip()
    if url:
        try:
            ref: CivitaiRef = parse_civitai_url(url)
        except InvalidUrl as exc:
            raise RowProblem(f"URL: {exc}") from None
        rec.url = ref.url
        rec.model_id, rec.version_id = ref.model_id, ref.version_id
    for f in ("model_id", "version_id"):
        raw = (values.get(f) or "").strip()
        if raw:
            if not (raw.isascii() and raw.isdigit()):
                raise RowProblem(f"{f} is not a number: {raw[:40]!r}")
            if len(raw) > 16 or not 0 < int(raw) < MAX_CIVITAI_ID:
                raise RowProblem(f"{f} {raw[:40]} is not a plausible Civitai id")
            setattr(rec, f, int(raw))
    for form in (*sheet_forms(), "hash"):
        raw = (values.get(form) or "").strip()
        if raw:
            rec.add_hash(form, raw, origin)
    for column, unit in (("size", ""), ("size_kb", "kb"), ("size_mb", "mb")):
        raw = (values.get(column) or "").strip()
        if raw:
            rec.add_size(raw, unit, origin)
    if not (rec.name or rec.url or rec.signals or rec.version_id or rec.model_id):
        raise RowProblem("no name, URL or hash")
    if rec.url is None and (rec.model_id or rec.version_id):
        rec.url = CivitaiRef(rec.model_id, rec.version_id).url
    return rec

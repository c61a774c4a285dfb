"""Typed rows of the comparison reports: what ``ser-hf compare`` computes, what its Markdown, the README block, the
multi-corpus summary and the results index read. JSON is parsed here, at the edge (:meth:`CompareReport.from_dict`),
and written here (:meth:`CompareReport.to_dict`), byte for byte as before: ``tests/test_report_rows.py`` round-trips
every ``report.json`` under ``docs/results``.

Keys added after some reports were written (``machine``, ``warnings``, ``train_machines``, ``train_resumed_runs``,
``strata``, and the over-seeds statistics of a single-seed system) are ``None`` when a report lacks them and are left
out of its JSON again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

OPTIONAL = {"optional": True}
"""Field metadata: the key is left out of the JSON when the value is ``None``."""


class _Absent:
    """A key that a report written by an older ser_hf does not have (as opposed to one holding ``null``)."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()
"""The value of a field whose key the JSON lacked; such a field is left out of the JSON again."""


def _json(value):
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def to_json_dict(row) -> dict:
    """A dataclass row as a JSON mapping, in field order, optional ``None`` fields left out."""
    return {
        f.name: _json(getattr(row, f.name))
        for f in fields(row)
        if getattr(row, f.name) is not ABSENT and not (f.metadata.get("optional") and getattr(row, f.name) is None)
    }


def _int_keys(d: dict | None) -> dict | None:
    """Fold numbers are ints in memory and strings once written to JSON."""
    return None if d is None else {int(k): v for k, v in d.items()}


@dataclass
class MeanStd:
    """A mean and its sample standard deviation (ddof=1; ``None`` for a single value)."""

    mean: float
    std: float | None

    @classmethod
    def from_dict(cls, d: dict | None) -> MeanStd | None:
        return None if d is None else cls(d["mean"], d["std"])

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}

    def text(self, digits: int = 3, signed: bool = False) -> str:
        """``"0.612 +- 0.034"``, or ``"0.612 (1 run)"`` without a spread; ``signed``: ``"+0.094 +- 0.023"``."""
        mean = f"{self.mean:+.{digits}f}" if signed else f"{self.mean:.{digits}f}"
        return f"{mean} +- {self.std:.{digits}f}" if self.std is not None else f"{mean} (1 run)"


@dataclass(kw_only=True)
class Stat:
    """One score of one system over folds: per fold the mean over its seeds, then mean +- std over folds; with
    several seeds per fold also the spread over seeds (of each seed's mean over folds, and per fold)."""

    mean: float
    std: float | None
    per_fold: dict[int, float]
    over_seeds: MeanStd | None = field(default=None, metadata=OPTIONAL)
    per_fold_std_over_seeds: dict[int, float | None] | None = field(default=None, metadata=OPTIONAL)

    @classmethod
    def from_dict(cls, d: dict) -> Stat:
        return cls(
            mean=d["mean"],
            std=d["std"],
            per_fold=_int_keys(d["per_fold"]),
            over_seeds=MeanStd.from_dict(d.get("over_seeds")),
            per_fold_std_over_seeds=_int_keys(d.get("per_fold_std_over_seeds")),
        )

    def to_dict(self) -> dict:
        return to_json_dict(self)

    @property
    def summary(self) -> MeanStd:
        return MeanStd(self.mean, self.std)


@dataclass(kw_only=True)
class SystemSummary:
    """One system of a comparison (:func:`ser_hf.reports.compare.summarize_system`)."""

    name: str
    folds: list[int]
    num_folds: int
    seeds_per_fold: dict[int, list[int]]
    ua: Stat
    wa: Stat
    macro_f1: Stat
    per_class_recall: dict[str, float | None]
    validation_ua: MeanStd | None
    parameters: dict | None
    model: dict
    preprocessing: dict
    train_wall_time_s_per_run: MeanStd | None
    train_wall_time_s: float
    train_resumed_runs: int | None = field(default=None, metadata=OPTIONAL)
    train_device: list[str]
    train_threads: list
    train_machines: list[str] | None = field(default=None, metadata=OPTIONAL)
    inference_rtf: float
    inference_device: list[str]
    run_dirs: list[str]

    def stat(self, metric: str) -> Stat:
        """The :class:`Stat` of ``ua``, ``wa`` or ``macro_f1``."""
        return {"ua": self.ua, "wa": self.wa, "macro_f1": self.macro_f1}[metric]

    @property
    def num_seeds(self) -> list[int]:
        """The distinct numbers of seeds per fold (``[3]``: three seeds on every fold)."""
        return sorted({len(v) for v in self.seeds_per_fold.values()})

    @classmethod
    def from_dict(cls, d: dict) -> SystemSummary:
        return cls(
            **{k: d.get(k) for k in ("name", "folds", "num_folds", "per_class_recall", "parameters", "model")},
            **{k: d.get(k) for k in ("preprocessing", "train_wall_time_s", "train_resumed_runs", "train_device")},
            **{k: d.get(k) for k in ("train_threads", "train_machines", "inference_rtf", "inference_device")},
            run_dirs=d["run_dirs"],
            seeds_per_fold=_int_keys(d["seeds_per_fold"]),
            ua=Stat.from_dict(d["ua"]),
            wa=Stat.from_dict(d["wa"]),
            macro_f1=Stat.from_dict(d["macro_f1"]),
            validation_ua=MeanStd.from_dict(d["validation_ua"]),
            train_wall_time_s_per_run=MeanStd.from_dict(d["train_wall_time_s_per_run"]),
        )

    def to_dict(self) -> dict:
        return to_json_dict(self)


def interval_text(num_units: int, low: float, high: float) -> str:
    """A 95 % CI as ``[lo, hi]``, or why there is none: with one resampling unit (one test speaker) every resample
    is the sample itself, so the percentile interval would have zero width and mean nothing."""
    if num_units < 2:
        return "(no interval: one test speaker)"
    return f"[{low:+.3f}, {high:+.3f}]"


@dataclass(kw_only=True)
class Bootstrap:
    """A paired bootstrap of the UA difference (:func:`ser_hf.reports.compare.paired_bootstrap_ua`)."""

    ua_difference: float
    ci95_low: float
    ci95_high: float
    num_bootstrap: int
    resample: str
    num_units: int
    num_clips: int
    seeds: list[int]
    share_above_zero: float
    strata: str | None = field(default=None, metadata=OPTIONAL)
    # a cross-corpus cell whose two models share different labels with the corpus: both scored again on these
    labels: list[str] | None = field(default=None, metadata=OPTIONAL)
    reference_ua: float | None = field(default=None, metadata=OPTIONAL)
    ua: float | None = field(default=None, metadata=OPTIONAL)

    @classmethod
    def from_dict(cls, d: dict | None) -> Bootstrap | None:
        return None if d is None else cls(**d)

    def to_dict(self) -> dict:
        return to_json_dict(self)

    def interval(self) -> str:
        """The 95 % CI as text (:func:`interval_text`)."""
        return interval_text(self.num_units, self.ci95_low, self.ci95_high)

    def strata_words(self) -> str:
        """How the bootstrap drew its units, in the report's words."""
        if self.strata == "pooled over folds":
            return "across folds (one test speaker per fold: a draw within a fold could not vary)"
        return "within folds"


@dataclass(kw_only=True)
class Paired:
    """One system against the reference, on the folds both have: per-fold differences and the bootstrap."""

    folds: list[int]
    ua_difference_per_fold: list[float]
    wa_difference_per_fold: list[float]
    macro_f1_difference_per_fold: list[float]
    bootstrap: Bootstrap

    def differences(self, metric: str) -> list[float]:
        return getattr(self, f"{metric}_difference_per_fold")

    @classmethod
    def from_dict(cls, d: dict) -> Paired:
        return cls(**{**d, "bootstrap": Bootstrap.from_dict(d["bootstrap"])})

    def to_dict(self) -> dict:
        return to_json_dict(self)


@dataclass(kw_only=True)
class BestSystem:
    """The system with the best mean validation UA (never test) and its run with the best validation UA."""

    name: str
    validation_ua: float
    folds: list[int] | None
    by_system: dict[str, float]
    run_dir: str
    run_validation_ua: float
    run_fold: int

    @classmethod
    def from_dict(cls, d: dict | None) -> BestSystem | None:
        return None if d is None else cls(**d)

    def to_dict(self) -> dict:
        return to_json_dict(self)


@dataclass(kw_only=True)
class CitedResult:
    """A published result of the corpus, shown beside measured ones and never as measured here."""

    system: str
    ua: float | None = field(default=None, metadata=OPTIONAL)
    accuracy: float | None = field(default=None, metadata=OPTIONAL)
    protocol: str
    source: str

    @classmethod
    def from_dict(cls, d: dict) -> CitedResult:
        return cls(**d)

    def to_dict(self) -> dict:
        return to_json_dict(self)


@dataclass(kw_only=True)
class CompareReport:
    """A ``ser-hf compare`` report (``report.json``)."""

    corpus: str
    command: str
    machine: dict | None = field(default=None, metadata=OPTIONAL)
    reference: str
    systems: list[SystemSummary]
    paired: dict[str, Paired]
    best_system: BestSystem | None
    published: list[CitedResult]
    warnings: list[str] | None = field(default=None, metadata=OPTIONAL)

    def system(self, name: str) -> SystemSummary:
        """The system called ``name``.

        Raises:
            KeyError: no such system (the message lists the systems).
        """
        for s in self.systems:
            if s.name == name:
                return s
        raise KeyError(f"no system {name!r} in the {self.corpus} report; systems: {[s.name for s in self.systems]}")

    @classmethod
    def from_dict(cls, d: dict) -> CompareReport:
        return cls(
            corpus=d["corpus"],
            command=d["command"],
            machine=d.get("machine"),
            reference=d["reference"],
            systems=[SystemSummary.from_dict(s) for s in d["systems"]],
            paired={name: Paired.from_dict(p) for name, p in d["paired"].items()},
            best_system=BestSystem.from_dict(d["best_system"]),
            published=[CitedResult.from_dict(c) for c in d["published"]],
            warnings=d.get("warnings"),
        )

    def to_dict(self) -> dict:
        return to_json_dict(self)


@dataclass(kw_only=True)
class InCorpusRow:
    """One corpus of the multi-corpus in-corpus summary: the multi-corpus run against that corpus alone, on the
    folds both have (:func:`ser_hf.reports.multicorpus.in_corpus_row`)."""

    family: str
    corpus: str
    folds: list[int]
    single_ua: float
    multi_ua: float
    mean_difference: float
    bootstrap: Bootstrap

    @classmethod
    def from_dict(cls, d: dict) -> InCorpusRow:
        return cls(**{**d, "bootstrap": Bootstrap.from_dict(d["bootstrap"])})

    def to_dict(self) -> dict:
        return to_json_dict(self)


@dataclass(kw_only=True)
class LocoRow:
    """One leave-one-corpus-out run against the reference on every clip of the corpus it left out
    (:func:`ser_hf.reports.multicorpus.loco_rows`); ``labels``: the labels both were scored on where their label sets
    differ, else ``None``."""

    system: str
    run_dir: str
    model_type: str | None
    base_model: str | None
    run_labels: list[str] | _Absent = ABSENT
    seed: int | None | _Absent = ABSENT
    corpus: str
    clips: int
    reference_ua: float
    ua: float
    labels: list[str] | None | _Absent = ABSENT
    bootstrap: Bootstrap | None

    @classmethod
    def from_dict(cls, d: dict) -> LocoRow:
        return cls(**{**d, "bootstrap": Bootstrap.from_dict(d["bootstrap"])})

    def to_dict(self) -> dict:
        return to_json_dict(self)


@dataclass(kw_only=True)
class LocoSeedRow:
    """Mean +- std over seeds of the leave-one-corpus-out rows that differ only by seed
    (:func:`ser_hf.reports.multicorpus.loco_seed_rows`)."""

    corpus: str
    model_type: str | None
    base_model: str | None
    run_labels: list[str]
    labels: list[str] | None
    seeds: list[int]
    systems: list[str]
    clips: int
    reference_ua: float
    ua: MeanStd
    difference: MeanStd

    @classmethod
    def from_dict(cls, d: dict) -> LocoSeedRow:
        return cls(**{**d, "ua": MeanStd.from_dict(d["ua"]), "difference": MeanStd.from_dict(d["difference"])})

    def to_dict(self) -> dict:
        return to_json_dict(self)


@dataclass(kw_only=True)
class MulticorpusSummary:
    """A ``ser-hf multicorpus-report`` ``summary.json``."""

    command: str
    in_corpus: list[InCorpusRow] = field(default_factory=list)
    loco: list[LocoRow] = field(default_factory=list)
    loco_seeds: list[LocoSeedRow] | _Absent = field(default_factory=list)
    loco_reference: str | None = None
    machine: dict | None = field(default=None, metadata=OPTIONAL)
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict) -> MulticorpusSummary:
        return cls(
            command=d["command"],
            in_corpus=[InCorpusRow.from_dict(r) for r in d["in_corpus"]],
            loco=[LocoRow.from_dict(r) for r in d["loco"]],
            loco_seeds=[LocoSeedRow.from_dict(r) for r in d["loco_seeds"]] if "loco_seeds" in d else ABSENT,
            loco_reference=d["loco_reference"],
            machine=d.get("machine"),
            commands=d.get("commands", []),
            notes=d.get("notes", []),
        )

    def to_dict(self) -> dict:
        return to_json_dict(self)


@dataclass(kw_only=True)
class CrossCell:
    """One checkpoint on one corpus (:func:`ser_hf.reports.crosscorpus.system_row`): ``scope`` ``test`` (its own
    unseen speakers) or ``all`` (a corpus it never saw), scored on the labels model and corpus share; ``vs_reference``:
    the paired difference against the reference system on the same clips."""

    scope: str
    ua: float
    wa: float
    macro_f1: float
    shared_labels: list[str]
    num_clips: int
    vs_reference: Bootstrap | None = field(default=None, metadata=OPTIONAL)

    @classmethod
    def from_dict(cls, d: dict | None) -> CrossCell | None:
        return None if d is None else cls(**{**d, "vs_reference": Bootstrap.from_dict(d.get("vs_reference"))})

    def to_dict(self) -> dict:
        return to_json_dict(self)


@dataclass(kw_only=True)
class CrossSystem:
    """One system of a cross-corpus report: its chosen checkpoint and a cell per corpus (``None``: a corpus it
    trained on whole)."""

    system: str
    run_dir: str
    trained_on: str
    fold: int | None
    left_out: str | None
    validation_ua: float | None
    scores: dict[str, CrossCell | None]

    @classmethod
    def from_dict(cls, d: dict) -> CrossSystem:
        return cls(**{**d, "scores": {c: CrossCell.from_dict(v) for c, v in d["scores"].items()}})

    def to_dict(self) -> dict:
        return to_json_dict(self)


@dataclass(kw_only=True)
class CrossCorpusReport:
    """A ``ser-hf cross-corpus`` report (``report.json``)."""

    command: str
    corpora: list[str]
    systems: list[CrossSystem]
    reference: str | None
    machine: dict | None = field(default=None, metadata=OPTIONAL)

    def system(self, name: str) -> CrossSystem:
        """The system called ``name``.

        Raises:
            KeyError: no such system (the message lists the systems).
        """
        for s in self.systems:
            if s.system == name:
                return s
        raise KeyError(f"no system {name!r} in the cross-corpus report; systems: {[s.system for s in self.systems]}")

    @classmethod
    def from_dict(cls, d: dict) -> CrossCorpusReport:
        return cls(**{**d, "systems": [CrossSystem.from_dict(s) for s in d["systems"]]})

    def to_dict(self) -> dict:
        return to_json_dict(self)

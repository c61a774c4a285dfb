"""The process a command runs in: what a result was computed on (the processor or GPU, the thread count and the
library versions), whether this is the first process of a launch, and how commands report (logging).

Runs of one recipe and seed are deterministic on one machine but differ in the last bits between processor makes
(AMD EPYC and Intel Xeon take different vectorised kernels), and on a small test side such a difference can move
UA by several points (docs/evaluation.md, "Across machines"). Every run record (:class:`ser_hf.run.Runtime`) and
every generated report therefore carries :func:`machine_facts`, so that a reader can tell a float difference from
a regression, and ``ser-hf compare`` warns when it pairs runs trained on different processors.
"""

from __future__ import annotations

import logging
import os
import platform
from importlib import metadata

LIBRARIES = ("torch", "transformers", "peft", "datasets", "numpy")
"""The packages whose versions change a run's numbers, recorded by :func:`machine_facts`."""


def cpu_model() -> str:
    """The processor's model name (``model name`` of ``/proc/cpuinfo`` on Linux, else :func:`platform.processor`,
    else the architecture), e.g. ``AMD EPYC`` or ``Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model name", "cpu model", "Processor") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def library_versions() -> dict[str, str]:
    """``{package: version}`` of :data:`LIBRARIES` (``"not installed"`` for a missing one)."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine_facts(threads: int | None = None, gpu: str | None = None) -> dict:
    """The machine a result is computed on.

    Args:
        threads: torch intra-op threads (default: ``torch.get_num_threads()``).
        gpu: the GPU's name (default: ``torch.cuda.get_device_name()`` when CUDA is available, else ``None``).

    Returns:
        ``{"cpu": model name, "gpu": name or None, "threads": int, "python": version, "versions": {package:
        version}}``.
    """
    import torch

    if gpu is None and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name()
    return {
        "cpu": cpu_model(),
        "gpu": gpu,
        "threads": int(threads if threads is not None else torch.get_num_threads()),
        "python": platform.python_version(),
        "versions": library_versions(),
    }


def describe_machine(facts: dict | None) -> str:
    """One line for a report: ``AMD EPYC, 1 threads; torch 2.13.0, transformers 5.25.0, ...`` (the GPU's name
    first when there is one); ``unknown machine`` for a record written before machines were recorded."""
    if not facts:
        return "unknown machine (recorded before ser_hf kept it)"
    where = f"{facts['gpu']} (host {facts.get('cpu')})" if facts.get("gpu") else str(facts.get("cpu"))
    versions = ", ".join(f"{k} {v}" for k, v in (facts.get("versions") or {}).items())
    return f"{where}, {facts.get('threads')} threads; {versions}"


def machine_key(facts: dict | None) -> str | None:
    """What makes two runs' floats comparable: the GPU's name, else the CPU model; ``None`` when not recorded."""
    if not facts:
        return None
    return facts.get("gpu") or facts.get("cpu")


def first_process() -> bool:
    """Whether this is the first process of a run (``RANK`` / ``LOCAL_RANK`` 0 or unset, as ``accelerate launch``
    and ``torchrun`` set them): the one that holds the output folder's lock and publishes."""
    return os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) in ("", "0")


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""How commands report: through :mod:`logging` under the ``ser_hf`` logger (transformers' convention), never
``print``; a library user keeps control of the handlers, a command turns reporting on."""


def configure_logging(level: int = logging.INFO) -> None:
    """For commands (``ser-hf ...``, ``scripts/finetune.py``): log ``level`` and above to stderr with
    :data:`LOG_FORMAT` (:func:`logging.basicConfig`, so handlers a caller set up first are kept)."""
    logging.basicConfig(format=LOG_FORMAT, level=level)

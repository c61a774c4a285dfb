"""A Gradio page to try a model on your own voice (``ser-hf demo``), and the Hub Space that hosts it
(``ser-hf space``).

Upload or record audio; the page shows the emotion probabilities as a bar chart (a ``gr.Label``) and, for a
recording longer than the model's window, the emotion timeline that ``ser-hf predict --timeline`` draws
(:func:`ser_hf.timeline.predict_timeline`). Silence, unreadable files and recordings over :data:`MAX_DEMO_S` get a
message instead of a label (silence by the clip-mode rule of ``ser-hf predict``,
:data:`ser_hf.inference.SILENCE_DBFS`). Nothing is kept: the uploaded file is deleted once it is scored, and the
plots Gradio caches are deleted after :data:`CACHE_S` seconds.

The page runs an ONNX export on onnxruntime (no PyTorch) or a PyTorch checkpoint. A Space folder
(:func:`write_space`) holds the export, this module and the four torch-free modules it uses (``audio``,
``onnx_backend``, ``inference``, ``timeline``) as a small ``ser_hf`` package, ``app.py`` and ``requirements.txt``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import AudioError, load_audio
from .inference import SILENCE_DBFS, open_model, rms_dbfs, scorer
from .onnx_backend import OnnxClassifier, is_onnx_export
from .timeline import predict_timeline

MAX_DEMO_S = 600.0
"""The longest recording the page scores, in seconds (10 minutes: about a minute of CPU time at worst)."""
TIMELINE_S = 10.0
"""A recording longer than this many seconds (or than a Whisper model's window, when longer) gets a timeline."""
CACHE_S = 300
"""Seconds after which Gradio deletes the files it cached for a request (the timeline plots)."""
SPACE_MODULES = ("audio.py", "onnx_backend.py", "inference.py", "timeline.py", "demo.py")
"""The ser_hf modules a Space ships (none imports torch or transformers when it runs an ONNX export)."""


@dataclass
class Model:
    """A model ready for the page: ``scorer`` and ``feature_extractor`` for :func:`ser_hf.inference.scorer`,
    ``labels`` and ``window_s`` (a Whisper model's input window in seconds, ``None`` for variable-length inputs)."""

    scorer: object
    feature_extractor: object
    labels: list[str]
    window_s: float | None
    name: str


def classifier_for(model: str, quantized: bool = False) -> Model:
    """An ONNX export (onnxruntime; ``quantized``: its int8 model) or a PyTorch checkpoint, for the page."""
    if is_onnx_export(model):
        clf = OnnxClassifier(model, quantized=quantized)
        return Model(clf, None, clf.labels, clf.window_s, Path(model).name)
    from .audio import fixed_window

    clf, fe, labels = open_model(model, backend="torch")
    window = fixed_window(fe)
    return Model(clf, fe, labels, None if window is None else window / fe.sampling_rate, Path(str(model)).name)


def analyse(model: Model, path: str | os.PathLike) -> tuple[dict[str, float], str | None, str]:
    """Score one recording as the page does.

    Returns:
        ``(probabilities, timeline_png, message)``: ``{label: probability}`` for the whole recording (empty for
        silence), the path of a timeline plot for a recording longer than :data:`TIMELINE_S` (or the model's
        window), else ``None``, and a sentence for the user.

    Raises:
        AudioError: the file cannot be read (named), or lasts more than :data:`MAX_DEMO_S`.
    """
    sr = model.feature_extractor.sampling_rate if model.feature_extractor is not None else model.scorer.sampling_rate
    wav = load_audio(path, sr)
    seconds = len(wav) / sr
    if seconds > MAX_DEMO_S:
        raise AudioError(f"the recording lasts {seconds:.0f} s; this page takes up to {MAX_DEMO_S:.0f} s")
    level = rms_dbfs(wav)
    if level < SILENCE_DBFS:  # the clip-mode rule of ser-hf predict
        return {}, None, f"Silence ({level:.0f} dBFS over {seconds:.1f} s): no emotion to show. Speak louder or closer."
    long_s = max(TIMELINE_S, model.window_s or 0.0)
    if seconds <= long_s:  # the waveform already read, scored as predict() scores a clip
        labels, _, probabilities = scorer(model.scorer, model.feature_extractor)
        probs = dict(zip(labels, map(float, probabilities([wav])[0]), strict=True))
        top = max(probs, key=probs.get)
        return probs, None, f"{seconds:.1f} s scored as one clip: {top} ({probs[top]:.0%})."
    window = model.window_s or 2.0
    timeline = predict_timeline(
        model.scorer, path, window_s=window, hop_s=window / 2, feature_extractor=model.feature_extractor
    )
    speech = [s.probabilities for s in timeline.segments if s.speech]
    probs = {c: float(np.mean([p[c] for p in speech])) for c in model.labels} if speech else {}
    png = Path(tempfile.mkdtemp(prefix="ser_hf_demo_")) / "timeline.png"
    timeline.plot(png)
    top = max(probs, key=probs.get) if probs else "-"
    message = (
        f"{seconds:.1f} s scored in {len(timeline.segments)} windows of {window:g} s ({len(speech)} with speech); "
        f"mean over them: {top}."
    )
    return probs, str(png), message


def build_demo(model: Model):
    """The Gradio page (``gr.Blocks``): an audio input (upload or microphone), a bar chart of the emotion
    probabilities, the timeline plot for long recordings and a message line. Its API (``/analyse``) takes a file
    and returns the three outputs, for ``gradio_client``."""
    import gradio as gr

    def run(path):
        if not path:
            return {}, None, "Upload a file or record yourself first."
        try:
            probs, png, message = analyse(model, path)
        except (AudioError, OSError) as err:
            return {}, None, f"Cannot use this recording: {err}"
        finally:
            Path(path).unlink(missing_ok=True)  # the upload is not kept
        return probs, png, message

    with gr.Blocks(title=f"Speech emotion: {model.name}", delete_cache=(60, CACHE_S)) as page:
        gr.Markdown(
            f"# Speech emotion recognition\nModel: `{model.name}` ({', '.join(model.labels)}). Upload a recording "
            "or record yourself; nothing is stored."
        )
        audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Recording")
        button = gr.Button("Analyse", variant="primary")
        label = gr.Label(num_top_classes=len(model.labels), label="Emotion")
        timeline = gr.Image(label="Emotion over time (long recordings)", type="filepath")
        message = gr.Textbox(label="Result", interactive=False)
        button.click(run, inputs=audio, outputs=[label, timeline, message], api_name="analyse")
    return page


APP = '''"""Speech emotion recognition: the ONNX export in model/ on onnxruntime (written by ser-hf space)."""

from ser_hf.demo import build_demo, classifier_for

build_demo(classifier_for("model")).launch()
'''
REQUIREMENTS = "gradio>=5\nonnxruntime>=1.18\nnumpy\nsoundfile>=0.12\nsoxr>=0.5\nmatplotlib>=3.8\nthreadpoolctl>=3\n"


def write_space(export: str | os.PathLike, to: str | os.PathLike, model_repo: str | None = None) -> Path:
    """A Hugging Face Space folder for an ONNX export: ``app.py``, ``requirements.txt``, ``README.md`` with the
    Space metadata (Gradio SDK), ``model/`` (the export) and ``ser_hf/`` (:data:`SPACE_MODULES`).

    Raises:
        FileNotFoundError: ``export`` is not an ONNX export. FileExistsError: ``to`` holds files.
    """
    export, to = Path(export), Path(to)
    if not is_onnx_export(export):
        raise FileNotFoundError(f"{export}: not an ONNX export; make one with ser-hf export-onnx RUN --to DIR")
    if to.exists() and any(to.iterdir()):
        raise FileExistsError(f"--to {to} already holds files; choose an empty folder")
    package = to / "ser_hf"
    package.mkdir(parents=True)
    here = Path(__file__).resolve().parent
    for name in SPACE_MODULES:
        shutil.copy2(here / name, package / name)
    (package / "__init__.py").write_text('"""The torch-free part of ser_hf that this Space runs."""\n')
    shutil.copytree(export, to / "model")
    (to / "app.py").write_text(APP)
    (to / "requirements.txt").write_text(REQUIREMENTS)
    labels = OnnxClassifier(export).labels
    link = f"[{model_repo}](https://huggingface.co/{model_repo})" if model_repo else "the model in `model/`"
    (to / "README.md").write_text(
        "---\ntitle: Speech emotion recognition\nemoji: 🎙️\ncolorFrom: blue\ncolorTo: green\nsdk: gradio\n"
        "app_file: app.py\npinned: false\n"
        + (f"models:\n- {model_repo}\n" if model_repo else "")
        + "---\n\n# Speech emotion recognition\n\n"
        f"Try {link} on your own voice: upload or record audio and see the probabilities of {', '.join(labels)}, "
        "and, for long recordings, the emotion over time. The model runs on onnxruntime (ONNX export made by "
        "`ser-hf export-onnx`); nothing you upload is kept.\n"
    )
    return to

"""nEMO, ASED and TurEV-DB builders and folds (issue 51), on synthetic trees in their published layouts."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_hf.corpora import CorpusError, ased, load_corpus, nemo, turevdb
from ser_hf.folds import make_split, num_folds


def clip(path: Path, sr: int = 8000, seconds: float = 0.05, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sf.write(path, (0.1 * rng.standard_normal(int(sr * seconds))).astype(np.float32), sr)
    return path


def write_nemo(root: Path, per_emotion: int = 1) -> Path:
    words = {v: k for k, v in nemo.WORDS.items()}
    for n, speaker in enumerate(nemo.SPEAKERS):
        for emotion in nemo.EMOTIONS:
            for k in range(per_emotion):
                clip(root / "samples" / f"{speaker}_{words[emotion]}_{k}.wav", seed=n)
    (root / "data.tsv").write_text("file_id\temotion\tspeaker_id\n")
    return root


def write_ased(root: Path) -> Path:
    """One clip of every emotion for every speaker, with the speaker's gender code (and one contradicting it)."""
    for speaker in ased.SPEAKERS:
        gender = "01" if speaker in ased.FEMALE else "02"
        for folder, code in ased.FOLDERS.items():
            clip(root / folder / f"{code}-01-01-{gender}-{speaker}.wav")
    clip(root / "01Neutral" / "n1-02-01-02-09.wav")  # speaker 09 (female) with a male code, as in the release
    clip(root / "04Sad" / "S4-03-02-01-29.wav")  # a capital letter, as in the release
    return root


def write_turevdb(root: Path, counts: dict | None = None) -> Path:
    """``counts``: ``{(speaker, emotion): clips}``; default one clip of every emotion a speaker has."""
    codes = {v: k for k, v in turevdb.CODES.items()}
    if counts is None:
        counts = {(s, e): 1 for s in turevdb.SPEAKERS for e in turevdb.EMOTIONS}
        counts = {k: v for k, v in counts.items() if not (k[0] == "1157" and k[1] in ("calm", "happy"))}
    for (speaker, emotion), n in counts.items():
        for k in range(n):
            clip(root / turevdb.FOLDER_OF[emotion] / f"{speaker}_{codes[emotion]}_word{k}.wav")
    return root


def test_nemo_reads_names_with_speaker_gender_and_canonical_labels(tmp_path):
    root = write_nemo(tmp_path / "nemo")
    ds = load_corpus("nemo", root, cache_dir=tmp_path / "c", verify_counts=False)
    assert len(ds) == 9 * 6 and set(ds.features["label"].names) == set(nemo.EMOTIONS)
    row = ds[ds["id"].index("EB0_anger_0")]
    assert (row["speaker"], row["gender"], ds.features["label"].names[row["label"]]) == ("EB0", "female", "angry")
    with pytest.raises(CorpusError, match=r"speaker MP0: 6 clips, expected 256"):
        load_corpus("nemo", root, cache_dir=tmp_path / "c2")
    clip(root / "samples" / "EB0_joy_3.wav")
    with pytest.raises(CorpusError, match=r"EB0_joy_3.wav: not an nEMO clip name"):
        load_corpus("nemo", root, cache_dir=tmp_path / "c3", verify_counts=False)


def test_ased_takes_the_speaker_field_as_identity_and_its_majority_gender(tmp_path):
    root = write_ased(tmp_path / "ased")
    ds = load_corpus("ased", root, cache_dir=tmp_path / "c", verify_counts=False)
    assert len(ds) == 65 * 5 + 2 and len(set(ds["speaker"])) == 65
    odd = ds[ds["id"].index("n1-02-01-02-09")]
    assert odd["speaker"] == "09" and odd["gender"] == "female"  # its code says male; the speaker is female
    assert "s4-03-02-01-29" in ds["id"]
    assert Counter(g for s, g in zip(ds["speaker"], ds["gender"], strict=True) if s in ased.FEMALE) == {"female": 127}
    clip(root / "03Happy" / "a5-01-01-02-10.wav")
    with pytest.raises(CorpusError, match=r"emotion code 'a5' disagrees with its folder 03Happy"):
        load_corpus("ased", root, cache_dir=tmp_path / "c2", verify_counts=False)


def test_turevdb_checks_codes_against_folders_and_its_published_counts(tmp_path):
    counts = {(speaker, emotion): 82 for speaker in turevdb.SPEAKERS for emotion in turevdb.EMOTIONS}
    counts |= {("1157", "angry"): 77, ("1157", "sad"): 73, ("1157", "calm"): 0, ("1157", "happy"): 0}
    counts |= {("7895", "happy"): 29, ("7895", "calm"): 80}
    root = write_turevdb(tmp_path / "full", counts)
    ds = load_corpus("turevdb", root, cache_dir=tmp_path / "c")  # the documented counts hold
    assert len(ds) == 1735 and set(ds["gender"]) == {""} and ds["word"][0].startswith("word")
    (root / "Calm" / "1234_sk_word0.wav").rename(root / "Calm" / "1234_kz_word0.wav")
    with pytest.raises(CorpusError, match=r"emotion code 'kz' \(angry\) disagrees with its folder 'Calm'"):
        load_corpus("turevdb", root, cache_dir=tmp_path / "c2")


@pytest.mark.parametrize("module", [nemo, ased, turevdb], ids=lambda m: m.__name__.split(".")[-1])
def test_the_folds_cover_every_speaker_once(module):
    tested = [s for fold in module.FOLDS for s in fold]
    assert sorted(tested) == sorted(module.SPEAKERS) and len(tested) == len(set(tested))


def test_ased_folds_hold_both_genders_and_validate_on_the_next_fold(tmp_path):
    for fold in ased.FOLDS:
        assert sum(s in ased.FEMALE for s in fold) == 5 and 488 <= sum(ased.SPEAKERS[s] for s in fold) <= 500
        assert fold[0] in ased.FEMALE and fold[1] not in ased.FEMALE  # the validation pair: one of each
    speakers = [s for s, n in ased.SPEAKERS.items() for _ in range(n)]
    split = make_split("ased", speakers, "folds", 4)
    assert split.val_speakers == ased.FOLDS[0][:2] and len(split.train_speakers) == 50
    assert num_folds("ased", speakers, "folds") == 5


def test_a_turevdb_fold_without_some_classes_is_scored_on_the_classes_it_has(tmp_path):
    from ser_hf.metrics import compute_ser_metrics

    speakers = [s for s, n in turevdb.SPEAKERS.items() for _ in range(n)]
    split = make_split("turevdb", speakers, "folds", 5)
    assert split.test_speakers == ["1157"] and split.val_speakers == ["1234"]
    # 1157 has only angry (3) and sad (0): UA is the mean recall over those two, whatever the model says of others
    ref = np.array([3, 3, 2, 2])
    scores = compute_ser_metrics(np.array([3, 0, 2, 2]), ref, 4)
    assert scores["ua"] == pytest.approx(0.75)


def test_per_class_recall_over_folds_skips_a_class_a_fold_lacks():
    from ser_hf.reports.compare import mean_recall_per_class

    recalls = [[0.5, 0.25, 1.0, None], [None, None, 0.5, 1.0], None]
    assert mean_recall_per_class(recalls, ["calm", "happy", "sad", "angry"]) == {
        "calm": 0.5, "happy": 0.25, "sad": 0.75, "angry": 1.0,
    }  # fmt: skip
    assert mean_recall_per_class([[None, 1.0]], ["calm", "sad"]) == {"calm": None, "sad": 1.0}
    assert mean_recall_per_class([], ["calm"]) == {}


WRITERS = {"nemo": write_nemo, "ased": write_ased, "turevdb": write_turevdb}


@pytest.mark.parametrize("name", ["nemo", "ased", "turevdb"])
def test_download_fetches_the_pinned_github_archive_resumes_and_refuses_a_corrupt_one(name, tmp_path, monkeypatch):
    """``ser-hf download NAME`` offline: a local server stands for github.com and serves a zip of a synthetic tree
    laid out as the repository at its pinned commit."""
    import io
    import zipfile

    import ser_hf.download as dl
    from ser_hf.cli import main as cli
    from ser_hf.corpora import REGISTRY, fetch_corpus

    from .test_download import Server

    module = {"nemo": nemo, "ased": ased, "turevdb": turevdb}[name]
    repo, commit, _, subdir = module.SOURCE
    tree = WRITERS[name](tmp_path / "tree")
    top = f"{repo.split('/')[1]}-{commit}"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # stored: a flipped byte is found by the CRC alone
        for p in sorted(tree.rglob("*")):
            if p.is_file():
                z.write(p, "/".join(filter(None, [top, subdir, p.relative_to(tree).as_posix()])))
        z.writestr(f"{top}/README.md", "not corpus audio")
    url = f"/{repo}/archive/{commit}.zip"
    server = Server()
    try:
        server.files[url] = buf.getvalue()
        server.drop_once.add(url)  # the first try is cut halfway: the next one resumes
        monkeypatch.setattr(dl, "GITHUB", server.url)
        assert cli(["download", name, "--to", str(tmp_path / "d"), "--no_progress"]) == 2  # cut: kept to resume
        assert cli(["download", name, "--to", str(tmp_path / "d"), "--no_progress"]) == 0
        assert [r for r in server.requests if r[0] == url][-1][1] is not None  # resumed with a Range request
        folder = tmp_path / "d" / name / top / subdir
        ds = load_corpus(name, folder, cache_dir=tmp_path / "c", verify_counts=False)
        assert len(ds) == sum(1 for p in tree.rglob("*.wav"))
        # first use without --data_dir goes the same way and finds the corpus folder inside the download
        fetched = tmp_path / "cache" / "ser_hf_corpora" / name / top / subdir
        assert fetch_corpus(name, tmp_path / "cache", progress=False) == fetched
        asked = len(server.requests)
        assert fetch_corpus(name, tmp_path / "cache", progress=False) == fetched  # read back, not downloaded again
        assert len(server.requests) == asked
        data = bytearray(buf.getvalue())
        data[200] ^= 0xFF  # inside the first member's audio
        server.files[url] = bytes(data)
        assert cli(["download", name, "--to", str(tmp_path / "bad"), "--no_progress"]) == 2
        assert not (tmp_path / "bad" / name).exists()
        assert REGISTRY[name].fetchable
    finally:
        server.httpd.shutdown()


SEVEN = ["ravdess", "emovo", "eyase", "urdu", "nemo", "ased", "turevdb"]


def test_the_seven_corpora_combine_with_every_corpus_tested_in_every_fold_and_each_left_out_whole(tmp_path):
    """Issue 51's seven-corpus grid, on synthetic trees: four folds (URDU has the fewest), every corpus on every
    test side with its own fold's speakers, and a leave-one-corpus-out split for each of the six other corpora."""
    from ser_hf.corpora import corpus_list
    from ser_hf.multicorpus import load_corpora, make_multi_split, multi_num_folds

    from .conftest import write_ravdess_tree
    from .test_eyase_emovo_urdu import write_emovo, write_eyase, write_urdu

    trees = {
        "ravdess": write_ravdess_tree(tmp_path / "ravdess", seconds=0.05),
        "emovo": write_emovo(tmp_path / "emovo", sentences=("b1",)),
        "eyase": write_eyase(tmp_path / "eyase"),
        "urdu": write_urdu(tmp_path / "urdu"),
        "nemo": write_nemo(tmp_path / "nemo"),
        "ased": write_ased(tmp_path / "ased"),
        "turevdb": write_turevdb(tmp_path / "turevdb"),
    }
    names = corpus_list(",".join(SEVEN))
    dirs = {n: str(root) for n, root in trees.items()}
    multi = load_corpora(names, dirs, cache_dir=str(tmp_path / "c"), verify_counts=False)
    ds = multi.dataset
    assert multi.clips == dict(Counter(ds["corpus"])) and set(multi.clips) == set(SEVEN)
    assert {"calm", "surprised", "fearful", "happy"} <= set(multi.label_names)  # the union of the seven label sets
    assert sorted(set(ds["language"])) == ["am", "ar", "en", "it", "pl", "tr", "ur"]
    assert multi_num_folds(ds, names) == 4
    own = {n: [s.split("/", 1)[1] for c, s in zip(ds["corpus"], ds["speaker"], strict=True) if c == n] for n in SEVEN}
    for k in range(4):
        split = make_multi_split(ds, names, "folds", k)
        assert split.corpus == "+".join(SEVEN)
        for name in SEVEN:
            assert split.for_corpus(name).test_speakers == make_split(name, own[name], "folds", k).test_speakers
    for left_out in SEVEN[1:]:
        loco = make_multi_split(ds, names, "loco", 0, test_corpus=left_out)
        assert loco.test_speakers == sorted(f"{left_out}/{s}" for s in set(own[left_out]))
        assert not any(s.startswith(f"{left_out}/") for s in loco.train_speakers + loco.val_speakers)

"""The corpus registry is the one home of corpus names: folds, downloads, the CLI's choices and help read it."""

import pytest

from ser_hf.corpora import CORPORA, MANUAL_ONLY, NAMED_CORPORA, REGISTRY, fetch_corpus, manual_instructions
from ser_hf.folds import CORPUS_FOLDS


def test_every_named_corpus_brings_its_facts_from_its_module():
    assert list(REGISTRY)[-1] == "folder" and REGISTRY["folder"].info is None
    assert set(NAMED_CORPORA) == set(CORPORA) - {"folder"}
    for name in NAMED_CORPORA:
        info = REGISTRY[name].info
        assert info.languages and info.license and info.citation, name
        assert info.download is not None or info.manual_steps, f"{name}: neither a download nor manual steps"
        assert (name in CORPUS_FOLDS) == (info.folds is not None), name
    assert {n for n in NAMED_CORPORA if REGISTRY[n].fetchable} == {
        "ravdess",
        "emovdb",
        "urdu",
        "nemo",
        "ased",
        "turevdb",
    }
    assert set(MANUAL_ONLY) == {"anad", "eyase", "emovo"}
    assert CORPUS_FOLDS["emovdb"] == [["bea"], ["jenie"], ["josh"], ["sam"]]


@pytest.mark.parametrize("name", MANUAL_ONLY)
def test_manual_corpora_print_their_steps_and_refuse_first_use_fetching(name, tmp_path):
    steps = manual_instructions(name, tmp_path)
    assert REGISTRY[name].info.manual_steps[1] in steps and f'data_dir="{tmp_path / name}"' in steps
    with pytest.raises(ValueError, match=f"{name.upper()} cannot be fetched automatically"):
        fetch_corpus(name, tmp_path)


def test_folder_has_nothing_to_fetch_and_unknown_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="'folder' has nothing to download: pass --data_dir"):
        fetch_corpus("folder", tmp_path)
    with pytest.raises(ValueError, match="no manual steps for 'ravdess'"):
        manual_instructions("ravdess", tmp_path)


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "m", "--data_dir", "d", "--corpus", "klingon"],
        ["folds", "klingon", "--data_dir", "d"],
        ["download", "klingon"],
        ["export-dataset", "klingon", "--data_dir", "d", "--to", "x"],
        ["compare", "--system", "a=b", "--corpus", "klingon", "--data_dir", "d", "--output_dir", "o"],
    ],
)
def test_the_cli_lists_the_registry_as_choices(argv, capsys):
    from ser_hf.cli import main as cli

    with pytest.raises(SystemExit):
        cli(argv)
    err = capsys.readouterr().err
    assert "invalid choice: 'klingon'" in err
    assert all(name in err for name in NAMED_CORPORA)

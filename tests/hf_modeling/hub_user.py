"""What someone with only torch and transformers does with a model directory, in a process that cannot import
cockatoo_ml (so the directory's own ``modeling_cockatoo.py`` is what runs, and it has to stand alone).
``hub_user(texts, *dirs)`` runs this file as that process and returns its report:

    python tests/hf_modeling/hub_user.py TEXTS_JSON OUT_JSON [--resave SRC DEST] DIR [DIR ...]

Writes OUT_JSON: per DIR, each text's scores (label order of config.json) from the text-classification pipeline
(``top_k=None, function_to_apply="sigmoid"``) and from AutoModelForSequenceClassification (one padded batch), both
with ``trust_remote_code=True``; the module the model class came from; and per loader (AutoConfig,
AutoModelForSequenceClassification, pipeline) the error it raised without ``trust_remote_code`` (null when it
loaded). ``--resave`` first loads SRC with ``trust_remote_code=True`` and ``save_pretrained``s the model and its
tokenizer into DEST, as ``push_to_hub`` does before it uploads. Run it with stdin closed: transformers asks on a
terminal before it runs a directory's code.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
import transformers


def hub_user(texts: list[str], *model_dirs: Path, resave: tuple[Path, Path] | None = None) -> dict[str, dict]:
    """This file's report on each of ``model_dirs`` (keyed by ``str(path)``), from a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        texts_file, out = Path(tmp) / "texts.json", Path(tmp) / "out.json"
        texts_file.write_text(json.dumps(texts))
        extra = ["--resave", *map(str, resave)] if resave else []
        subprocess.run(
            [sys.executable, __file__, str(texts_file), str(out), *extra, *map(str, model_dirs)],
            stdin=subprocess.DEVNULL,  # transformers' trust prompt gets no answer: it raises instead of waiting
            check=True,
            timeout=600,
        )
        return json.loads(out.read_text())


def scores(model_dir: str, texts: list[str]) -> dict[str, Any]:
    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True).eval()
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, trust_remote_code=True)
    with torch.inference_mode():
        logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
    classify = transformers.pipeline(
        "text-classification", model=model_dir, trust_remote_code=True, top_k=None, function_to_apply="sigmoid"
    )
    return {
        "module": type(model).__module__,
        "pipeline": [[{r["label"]: r["score"] for r in result}[label] for label in labels] for result in classify(texts)],
        "AutoModelForSequenceClassification": torch.sigmoid(logits).tolist(),
    }


def refusals(model_dir: str) -> dict[str, str | None]:
    loaders = {
        "AutoConfig": transformers.AutoConfig.from_pretrained,
        "AutoModelForSequenceClassification": transformers.AutoModelForSequenceClassification.from_pretrained,
        "pipeline": lambda path: transformers.pipeline("text-classification", model=path),
    }
    errors: dict[str, str | None] = {}
    for name, load in loaders.items():
        try:
            load(model_dir)
            errors[name] = None
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
    return errors


def main(argv: list[str]) -> None:
    texts = json.loads(Path(argv[0]).read_text())
    out, dirs = Path(argv[1]), argv[2:]
    if dirs[0] == "--resave":
        source, dest, dirs = dirs[1], dirs[2], dirs[3:]
        transformers.AutoModelForSequenceClassification.from_pretrained(source, trust_remote_code=True).save_pretrained(dest)
        transformers.AutoTokenizer.from_pretrained(source, trust_remote_code=True).save_pretrained(dest)
    out.write_text(json.dumps({d: {**scores(d, texts), "without_trust_remote_code": refusals(d)} for d in dirs}))


if __name__ == "__main__":
    sys.modules["cockatoo_ml"] = None  # type: ignore[assignment]  # an import of it, by anything, now fails
    main(sys.argv[1:])

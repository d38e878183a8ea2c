"""Runs that chain stages: the one module allowed to import more than one stage (stages never import each other).

``train_text.py``: fine-tune; then put the model beside the ``--baselines`` on the test split (the evaluation
stage, so a model that a linear model beats says so in its card); then, with ``--student``, build the cascade's
student from the directory just written, as ``distill.py`` would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from accelerate import PartialState

from cockatoo_ml.distillation.run import DistillSettings, build_student
from cockatoo_ml.evaluation.run import compare_with_baselines
from cockatoo_ml.registry import paths
from cockatoo_ml.training.run import TrainSettings, evaluate_model_dir, parse_settings, train, write_parity_only


def train_and_distill(settings: TrainSettings) -> Path:
    """``train``, then (on the main process only, after every process is done) the baselines and the student."""
    output_dir = train(settings)
    if not PartialState().is_main_process:
        return output_dir
    data_dir = Path(settings.data or paths.PROCESSED_DIR)
    # A prepared dataset saved without a test split is compared on validation.
    split = "test" if (data_dir / "test").is_dir() else "validation"
    compare_with_baselines(output_dir, data_dir, settings.baselines, split)
    if settings.student:
        build_student(DistillSettings(model=output_dir, data=data_dir))
    return output_dir


def train_main(argv: Sequence[str] | None = None) -> int:
    settings = parse_settings(argv)
    if settings.eval_only:
        evaluate_model_dir(settings)
    elif settings.parity_only:
        write_parity_only(settings)
    else:
        train_and_distill(settings)
    return 0

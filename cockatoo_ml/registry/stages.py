"""Every stage's settings, in the order docs/configuration.md and .env.example list them."""

from __future__ import annotations

from cockatoo_ml.registry.bulk import ScoreSettings
from cockatoo_ml.registry.data import DownloadSettings, PrepareSettings
from cockatoo_ml.registry.distillation import DistillSettings
from cockatoo_ml.registry.evaluation import EvaluateSettings
from cockatoo_ml.registry.general import GeneralSettings
from cockatoo_ml.registry.labels import LabelSettings
from cockatoo_ml.registry.serving import ServingSettings
from cockatoo_ml.registry.training import TelemetrySettings, TrainSettings
from cockatoo_ml.settings import Stage

STAGES: tuple[Stage, ...] = (
    Stage("general", "Every script and the server", (GeneralSettings, LabelSettings)),
    Stage("download", "Data: download_data.py", (DownloadSettings,)),
    Stage("prepare", "Data: prepare_data.py", (PrepareSettings,)),
    Stage(
        "training",
        "Training: train_text.py",
        (TrainSettings, TelemetrySettings),
        note="A recipe file holds any of these settings by name (`epochs = 8`): "
        "`python train_text.py recipes/demo.toml --epochs 2`. The resolved settings, the recipe's path included, "
        "are saved as `training_settings.json` in the model directory.",
    ),
    Stage("evaluation", "Evaluation: evaluate.py", (EvaluateSettings,)),
    Stage("distillation", "The cascade's student: distill.py", (DistillSettings,)),
    Stage(
        "serving",
        "Serving: app.py (`hypercorn app:app`, `./start_api.sh`)",
        (ServingSettings,),
        note="Read once at start-up, from the environment and `.env` only. `start_api.sh [HOST] [PORT] [WORKERS]` "
        "(defaults `0.0.0.0 8000 1`) sets `COCKATOO_WORKERS` and prints the model directory the app will load.",
    ),
    Stage(
        "score",
        "Bulk scoring: score.py",
        (ScoreSettings,),
        note="How the model scores (precision, windows, the cascade, `COCKATOO_MAX_TEXT_TOKENS`, threads) comes from "
        "the server's variables above, so that score.py and the server answer alike.",
    ),
    Stage(
        "shell",
        "Shell scripts",
        (),
        note="`quickstart.sh` and `test.sh` create `.venv` with the interpreter `$PYTHON`; `quickstart.sh` serves on "
        "`$HOST:$PORT` (`./quickstart.sh --help` shows the defaults). These come from the shell only, not from `.env`.",
    ),
)

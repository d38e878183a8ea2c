"""The Hugging Face Hub sources of the seed design, with their real file layouts and columns.

``download_data.py`` fetches these into ``data/raw/<name>/`` and ``prepare_data.py`` (without ``--sources``)
prepares them. Add a dataset by adding a ``SourceSpec`` here or by writing a TOML file (README, "Adding a
dataset"). Layout facts and what could not be confirmed offline are recorded in ``datasets.md``.

Not loaded: ``deepghs/nsfw_detect`` is image data (listed in datasets.md only).
"""

from __future__ import annotations

from cockatoo_ml.data.sources import LabelRule, SourceSpec

PHISHING = SourceSpec(
    name="phishing",
    hub_repo="ealvaradob/phishing-dataset",
    hub_config="texts",
    # texts.json = the e-mail + SMS subset (JSON array of {"text", "label"}); the repo's combined_*.json add
    # URLs and raw HTML pages, which are not messages a moderation model sees. Point `files` at
    # combined_reduced.json to train on those too.
    files=("texts.json",),
    format="json",
    text_column="text",
    labels={"scam": LabelRule(columns=("label",))},  # 1 = phishing, 0 = benign (benign is *not* scam)
    unannotated=("violence", "nsfw", "harassment"),
    license="Apache-2.0 (dataset card)",
    citation="Alvarado, E. (2024). Phishing Datasets. https://huggingface.co/datasets/ealvaradob/phishing-dataset",
)

MEASURING_HATE_SPEECH = SourceSpec(
    name="measuring_hate_speech",
    hub_repo="ucberkeley-dlab/measuring-hate-speech",
    files=("measuring-hate-speech.parquet",),
    format="parquet",
    text_column="text",
    group_by="comment_id",  # one row per (comment, annotator): scores are averaged per comment
    labels={
        # hate_speech_score is the IRT score of the comment; the card says > 0.5 is approximately hate speech.
        "harassment": LabelRule(columns=("hate_speech_score",), threshold=0.5),
        # violence is an ordinal item (0 strongly disagree .. 4 strongly agree that it calls for violence):
        # positive when the annotators of the comment agree on average.
        "violence": LabelRule(columns=("violence",), threshold=3.0),
    },
    unannotated=("scam", "nsfw"),
    license="CC-BY-4.0",
    citation=(
        "Kennedy, C. J., Bacon, G., Sahn, A., & von Vacano, C. (2020). Constructing interval variables via faceted "
        "Rasch measurement and multitask deep learning: a hate speech application. arXiv:2009.10277"
    ),
)

TWEET_EVAL_HATE = SourceSpec(
    name="tweet_eval_hate",
    hub_repo="cardiffnlp/tweet_eval",
    hub_config="hate",
    files=("hate/*.parquet",),  # hate/{train,validation,test}-00000-of-00001.parquet
    format="parquet",
    text_column="text",
    labels={"harassment": LabelRule(columns=("label",))},  # 1 = hate (HatEval: immigrants, women)
    unannotated=("scam", "violence", "nsfw"),
    license="HatEval: CC-BY-NC-4.0 per the task organisers (non-commercial); TweetEval itself unrestricted",
    citation=(
        "Basile et al. (2019). SemEval-2019 Task 5: Multilingual Detection of Hate Speech Against Immigrants and "
        "Women in Twitter. SemEval. / Barbieri et al. (2020). TweetEval. Findings of EMNLP."
    ),
)

# ToxicChat's `toxicity` is a broad unsafe flag (hateful, sexual, harmful requests): a 0 is a clean negative
# for violence, nsfw and harassment, a 1 says only that *something* is unsafe -> unknown, not positive.
TOXICCHAT_FLAG: dict[str, float | str] = {"0": 0.0, "1": "unknown"}

TOXIC_CHAT = SourceSpec(
    name="toxic_chat",
    hub_repo="lmsys/toxic-chat",
    hub_config="toxicchat0124",
    files=("data/0124/toxic-chat_annotation_*.csv",),  # train + test of the 0124 version
    format="csv",
    text_column="user_input",
    labels={
        "violence": LabelRule(columns=("toxicity",), values=TOXICCHAT_FLAG),
        "nsfw": LabelRule(columns=("toxicity",), values=TOXICCHAT_FLAG),
        "harassment": LabelRule(columns=("toxicity",), values=TOXICCHAT_FLAG),
    },
    unannotated=("scam",),
    license="CC-BY-NC-4.0 (non-commercial)",
    citation=(
        "Lin, Z., et al. (2023). ToxicChat: Unveiling Hidden Challenges of Toxicity Detection in Real-World "
        "User-AI Conversation. Findings of EMNLP. arXiv:2310.17389"
    ),
)

JIGSAW_TOXICITY = SourceSpec(
    name="jigsaw_toxicity",
    hub_repo="tasksource/jigsaw_toxicity",
    files=("train.csv",),  # the Kaggle 2018 train.csv: id, comment_text, toxic, ..., identity_hate
    format="csv",
    text_column="comment_text",
    labels={
        "violence": LabelRule(columns=("threat",)),
        "harassment": LabelRule(columns=("toxic", "insult", "identity_hate"), merge="any"),
    },
    # `obscene` is profanity, not sexual content: nsfw stays unknown.
    unannotated=("scam", "nsfw"),
    license="Apache-2.0 (repo card); Kaggle data CC0, comment text CC-BY-SA-3.0 (Wikipedia, copyleft)",
    citation="Jigsaw/Conversation AI (2018). Toxic Comment Classification Challenge. Kaggle.",
)

KOALA_MODERATION = SourceSpec(
    name="text_moderation_multilingual",
    hub_repo="KoalaAI/Text-Moderation-Multilingual",
    files=("train.parquet", "validation.parquet"),
    format="parquet",
    text_column="prompt",
    labels={
        # OpenAI moderation taxonomy: S sexual, S3 sexual/minors, V violence, V2 violence/graphic,
        # H hate, H2 hate/threatening, HR harassment, SH self-harm (maps to none of ours).
        "nsfw": LabelRule(columns=("S", "S3"), merge="any"),
        "violence": LabelRule(columns=("V", "V2", "H2"), merge="any"),
        "harassment": LabelRule(columns=("H", "HR", "H2"), merge="any"),
    },
    unannotated=("scam",),
    license="Apache-2.0 (dataset card; aggregates ifmain/text-moderation-* and the OpenAI evaluation set)",
    citation="KoalaAI (2025). Text-Moderation-Multilingual. https://huggingface.co/datasets/KoalaAI/Text-Moderation-Multilingual",
)

HUB_SOURCES: tuple[SourceSpec, ...] = (
    PHISHING,
    MEASURING_HATE_SPEECH,
    TWEET_EVAL_HATE,
    TOXIC_CHAT,
    JIGSAW_TOXICITY,
    KOALA_MODERATION,
)

"""Emotion label sets shared by training, conversion and the runtime.

Sources:
    FER2013: Goodfellow et al., 2013, "Challenges in Representation Learning:
    A report on three machine learning contests" (ICML 2013 workshop); Kaggle
    CSV ids 0=angry 1=disgust 2=fear 3=happy 4=sad 5=surprise 6=neutral.
    FER+: Barsoum et al., 2016, arXiv:1608.01041; label.csv vote columns
    neutral, happiness, surprise, sadness, anger, disgust, fear, contempt,
    unknown, NF.
"""

from __future__ import annotations

#: Model output order: alphabetical, as the FER2013 image-folder layout.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

#: FER2013 Kaggle CSV emotion id -> label name.
FER2013_CSV_IDS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

#: FER+ label.csv vote columns (after file_name, face_box), in file order.
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF",
)

#: FER+ emotion column -> our label name (contempt handled by option).
FERPLUS_TO_EMOTION: dict[str, str] = {
    "neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
    "anger": "angry", "disgust": "disgust", "fear": "fear", "contempt": "contempt",
}


def labels_for_outputs(num_classes: int) -> tuple[str, ...]:
    """Labels of a model with ``num_classes`` outputs: the 7 ``EMOTIONS``, or FER+'s 8 with ``contempt`` last.

    Raises:
        ValueError: for any other number of outputs.
    """
    if num_classes == len(EMOTIONS):
        return EMOTIONS
    if num_classes == len(EMOTIONS) + 1:
        return EMOTIONS + ("contempt",)
    raise ValueError(f"expected a model with {len(EMOTIONS)} or {len(EMOTIONS) + 1} outputs, got {num_classes}")

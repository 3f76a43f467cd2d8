"""Emotion classification with the int8 TFLite model."""

from edge.classify.classifier import DEFAULT_MODEL, EmotionClassifier
from edge.classify.registry import DEFAULT_MODEL_NAME, SHIPPED_MODELS, resolve_model

__all__ = ["DEFAULT_MODEL", "DEFAULT_MODEL_NAME", "SHIPPED_MODELS", "EmotionClassifier", "resolve_model"]

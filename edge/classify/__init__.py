"""Emotion classification with the int8 TFLite model."""

from edge.classify.classifier import DEFAULT_MODEL, EmotionClassifier

__all__ = ["DEFAULT_MODEL", "EmotionClassifier"]

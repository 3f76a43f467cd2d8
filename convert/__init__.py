"""Keras -> TFLite conversion (float32, float16, or calibrated full-int8)."""

"""edge.smooth: time-based EMA and hysteresis on synthetic score sequences."""

import numpy as np
import pytest

from edge.labels import EMOTIONS
from edge.smooth import EmotionSmoother, SmoothingOptions
from edge.types import EmotionScores


def scores(label, p=0.8):
    v = np.full(7, (1 - p) / 6, np.float32)
    v[EMOTIONS.index(label)] = p
    return EmotionScores(v)


def run(seq, fps=30.0, **opts):
    sm = EmotionSmoother(SmoothingOptions(**opts))
    out = []
    for i, label in enumerate(seq):
        state, prev = sm.update(1, scores(label), i / fps)
        out.append((state.current, prev))
    return sm, out


def test_switch_happens_only_after_min_hold():
    seq = ["neutral"] * 30 + ["happy"] * 60
    _, out = run(seq, tau_s=0.2, min_hold_s=0.5)
    switch = next(i for i, (cur, _) in enumerate(out) if cur == "happy")
    assert out[switch][1] == "neutral"  # reported as a change from neutral
    assert 30 + 15 <= switch <= 30 + 15 + 15  # >= 0.5 s hold after the EMA flips


def test_short_blips_never_become_current():
    seq = ["neutral"] * 30 + ["surprise"] * 6 + ["neutral"] * 30  # 0.2 s blip
    _, out = run(seq, tau_s=0.1, min_hold_s=0.5)
    assert all(cur == "neutral" for cur, _ in out)


def test_ema_is_defined_on_seconds_not_frames():
    for fps in (5.0, 30.0):
        sm = EmotionSmoother(SmoothingOptions(tau_s=1.0, min_hold_s=0))
        sm.update(1, scores("neutral", 1.0), 0.0)
        n = int(fps)  # one second of "happy"
        for i in range(1, n + 1):
            state, _ = sm.update(1, scores("happy", 1.0), i / fps)
        assert state.smoothed[EMOTIONS.index("happy")] == pytest.approx(1 - np.exp(-1), abs=1e-4)


def test_seconds_and_dominant_are_accounted_per_track():
    seq = ["neutral"] * 60 + ["happy"] * 120
    sm, _ = run(seq, tau_s=0.1, min_hold_s=0.2)
    state = sm.pop(1)
    assert state.dominant == "happy"
    assert state.seconds["neutral"] == pytest.approx(2.3, abs=0.2)
    assert sum(state.seconds.values()) == pytest.approx(179 / 30, abs=1e-6)
    assert sm.pop(1) is None


def test_switch_margin_needs_a_clear_lead_before_a_change():
    """A challenger leading by less than ``switch_margin`` never becomes current; a clear lead does."""
    close = np.array([0.0, 0.0, 0.0, 0.45, 0.55, 0.0, 0.0], np.float32)   # neutral 0.55 vs happy 0.45
    slight = np.array([0.0, 0.0, 0.0, 0.55, 0.45, 0.0, 0.0], np.float32)  # happy leads by 0.10
    clear = np.array([0.0, 0.0, 0.0, 0.80, 0.20, 0.0, 0.0], np.float32)   # happy leads by 0.60
    sm = EmotionSmoother(SmoothingOptions(tau_s=0.0, min_hold_s=0.0, switch_margin=0.3))
    changes = []
    for i, probs in enumerate([close] + [slight] * 10 + [clear] * 2):
        _, previous = sm.update(1, EmotionScores(probs), i * 0.1)
        changes.append(previous)
    assert sm.states[1].current == "happy"
    assert changes.index("neutral") == 11  # the first frame with a 0.3+ lead, not the slight lead before

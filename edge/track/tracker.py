"""IoU tracker with constant-velocity carry between detections.

Greedy IoU association in the manner of the IOU Tracker (Bochinski et al.,
2017, "High-Speed Tracking-by-Detection Without Using Image Information",
AVSS) with SORT-style track management (Bewley et al., 2016,
arXiv:1602.00763): a track is confirmed after ``min_hits`` matches and
removed after ``max_missed`` consecutive detection rounds without one.
Between detections (``detect_every`` > 1) each live, *confirmed* track's box
moves with its estimated velocity; an unconfirmed track (fewer than
``min_hits`` matches) is never carried, so a single false detection is not
classified and starts no track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.types import BBox, Detection, Track, TrackedFace


@dataclass(frozen=True, kw_only=True)
class TrackerOptions:
    """Tracker settings, built by keyword only (two ``int`` fields must never swap silently).

    Attributes:
        iou_threshold: Minimum IoU for a detection to continue a track.
        max_missed: Detection rounds a track survives without a match.
        min_hits: Matches before a track is confirmed (reported).
        velocity_smoothing: EMA weight of the newest velocity estimate, in [0, 1].
    """

    iou_threshold: float = 0.3
    max_missed: int = 10
    min_hits: int = 2
    velocity_smoothing: float = 0.5


@dataclass
class TrackUpdate:
    """Result of one detection round: faces seen (matched or new) and tracks removed."""

    seen: list[TrackedFace]
    removed: list[Track]


def _shift(box: BBox, dx: float, dy: float) -> BBox:
    return BBox(box.x + dx, box.y + dy, box.w, box.h)


class IoUTracker:
    """Assigns stable ``track_id`` s to detections."""

    def __init__(self, options: TrackerOptions = TrackerOptions()) -> None:
        self.options = options
        self.tracks: list[Track] = []
        self._next_id = 1

    def _match(self, detections: list[Detection]) -> list[tuple[int, int]]:
        """Greedy highest-IoU-first pairs (track index, detection index) above the threshold."""
        if not self.tracks or not detections:
            return []
        ious = np.array([[t.bbox.iou(d.bbox) for d in detections] for t in self.tracks])
        pairs = []
        while ious.size and ious.max() >= self.options.iou_threshold:
            ti, di = np.unravel_index(int(np.argmax(ious)), ious.shape)
            pairs.append((int(ti), int(di)))
            ious[ti, :] = -1.0
            ious[:, di] = -1.0
        return pairs

    def _continue(self, track: Track, det: Detection, time_s: float) -> None:
        dt = time_s - track.last_s
        if dt > 0:
            vx = (det.bbox.x + det.bbox.w / 2 - track.bbox.x - track.bbox.w / 2) / dt
            vy = (det.bbox.y + det.bbox.h / 2 - track.bbox.y - track.bbox.h / 2) / dt
            a = self.options.velocity_smoothing
            track.velocity = (a * vx + (1 - a) * track.velocity[0], a * vy + (1 - a) * track.velocity[1])
        track.bbox, track.detection, track.last_s = det.bbox, det, time_s
        track.hits += 1
        track.misses = 0
        track.confirmed = track.confirmed or track.hits >= self.options.min_hits

    def update(self, detections: list[Detection], time_s: float) -> TrackUpdate:
        """Associate a detection round with the tracks.

        Args:
            detections: Faces detected in the frame at ``time_s`` (seconds).
            time_s: Frame time in seconds.

        Returns:
            Faces matched or created in this round, and tracks removed in it.
        """
        pairs = self._match(detections)
        matched_t = {ti for ti, _ in pairs}
        matched_d = {di for _, di in pairs}
        seen = []
        for ti, di in pairs:
            self._continue(self.tracks[ti], detections[di], time_s)
            seen.append(TrackedFace(self.tracks[ti], detections[di]))
        for ti, track in enumerate(self.tracks):
            if ti not in matched_t:
                track.misses += 1
        for di, det in enumerate(detections):
            if di not in matched_d:
                track = Track(self._next_id, det.bbox, time_s, time_s, detection=det,
                              confirmed=self.options.min_hits <= 1)
                self._next_id += 1
                self.tracks.append(track)
                seen.append(TrackedFace(track, det))
        removed = [t for t in self.tracks if t.misses > self.options.max_missed]
        self.tracks = [t for t in self.tracks if t.misses <= self.options.max_missed]
        return TrackUpdate(seen, removed)

    def carry(self, time_s: float) -> list[TrackedFace]:
        """Predict confirmed live tracks (matched in the latest round) at ``time_s`` by their velocity.

        The tracks themselves keep their last detected box, so the next
        association and velocity estimate use real detections only. Tracks
        below ``min_hits`` are not carried: they are reported only once a
        detection round confirms them.

        Args:
            time_s: Time of the frame between detection rounds, seconds.

        Returns:
            One ``TrackedFace`` per confirmed live track with the predicted detection.
        """
        carried = []
        for track in self.tracks:
            if track.misses or track.detection is None or not track.confirmed:
                continue
            dt = time_s - track.last_s
            dx, dy = track.velocity[0] * dt, track.velocity[1] * dt
            det = track.detection
            moved = Detection(_shift(det.bbox, dx, dy), det.score, det.keypoints + np.array([dx, dy], np.float32))
            carried.append(TrackedFace(track, moved))
        return carried

    def remove_all(self) -> list[Track]:
        """End every track (end of stream); returns them."""
        ended, self.tracks = self.tracks, []
        return ended

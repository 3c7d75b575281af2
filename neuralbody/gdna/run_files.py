"""A gDNA run folder: training one from a corpus, resuming it, and loading it back.

``RUN/checkpoint.pt`` holds plain values only (read with ``torch.load(weights_only=True)``
through :func:`neuralbody.training.checkpoint.load_checkpoint`)::

    format           "neuralbody.gdna/1"
    spec             the ModelSpec's values (network sizes, canonical box; "colour" when the model has colour,
                     "skinning" when its skinning is learned)
    model, codes     the networks' (with the skinning correction network, learned skinning) and the latent
                     codes' state dicts
    optimizers       {"coarse": ..., "detail": ...} Adam state dicts
    settings         the TrainSettings' values
    step, spent_s, last_loss    where training stands
    corpus           the corpus trained on (as given, text)
    scans            [[subject, frame], ...] the training scans, in code order
    shapes           (N, S) their body shapes
    body_model       the body model's name
    sizes            the TargetSizes' values (points prepared per scan: a resumed run prepares the same; runs
                     written before they were kept resume with 4096 / 2048 / 4096, what they were trained with)
    adversarial      (runs trained with the adversarial loss) the discriminator's options, state dict and
                     optimiser state (:func:`neuralbody.gdna.adversarial.adversary_state`)

Rank 0 writes it atomically (:func:`neuralbody.training.checkpoint.save_checkpoint`). A new run
has a colour network when every training scan has vertex colours (a corpus written by
``synth-corpus`` since colours were added); runs trained before colour existed load without one
(``generate`` then writes no colours, ``fit-scan`` fits no colour). A new run's skinning is
``fixed`` (the body model's) or ``learned`` (:mod:`neuralbody.gdna.learned_skinning`); runs
trained before the skinning could be learned load as fixed. With ``settings.adversarial_weight > 0``
the scans are prepared with normal-map views and a discriminator is trained in the detail stage
(:mod:`neuralbody.gdna.adversarial`; fixed skinning only); resuming such a run restores the
discriminator (a run resumed with the adversarial loss from a checkpoint without one starts a new
discriminator; resumed without it, the run's discriminator is dropped).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import torch

from neuralbody.body import load_body_model
from neuralbody.body.base import BodyModel
from neuralbody.data.corpus import CORPUS_INDEX
from neuralbody.gdna.adversarial import adversary_state, load_adversary_state, make_adversary
from neuralbody.gdna.colour import ColourOptions
from neuralbody.gdna.discriminator import DiscriminatorOptions
from neuralbody.gdna.latents import LatentCodes, LatentDistribution, fit_distribution
from neuralbody.gdna.learned_skinning import SkinningOptions
from neuralbody.gdna.learned_targets import with_learned_skinning
from neuralbody.gdna.model import GenerativeModel, ModelSpec
from neuralbody.gdna.normal_views import ViewOptions
from neuralbody.gdna.scans import CORPUS_FIX, ScanRef, corpus_scans
from neuralbody.gdna.training import TrainSettings, TrainState, make_optimizers, train
from neuralbody.gdna.training_data import LEGACY_SIZES, TargetSizes, prepare_scans
from neuralbody.io.errors import InputError, one_line
from neuralbody.training.checkpoint import load_checkpoint, save_checkpoint
from neuralbody.training.distributed import DistributedContext

log = logging.getLogger(__name__)

FORMAT = "neuralbody.gdna/1"
CHECKPOINT_NAME = "checkpoint.pt"
RUN_KEYS = ("format", "spec", "model", "codes", "step", "scans", "shapes", "body_model")
RESUME_KEYS = (*RUN_KEYS, "optimizers", "settings", "spent_s", "corpus")
RUN_FIX = "train one with `neuralbody train-gen CORPUS --out RUN`"
SKINNINGS = ("fixed", "learned")


@dataclasses.dataclass
class LoadedGenerator:
    """A trained run.

    Attributes:
        model: the networks, in eval mode.
        codes: the training scans' latent codes.
        shapes: (N, S) the training scans' body shapes.
        distribution: the Gaussian new people are drawn from.
        body: the body model.
        payload: the checkpoint's other values.
    """

    model: GenerativeModel
    codes: LatentCodes
    shapes: torch.Tensor
    distribution: LatentDistribution
    body: BodyModel
    payload: dict


@dataclasses.dataclass
class TrainResult:
    """What :func:`train_run` did: the ``state`` reached, ``new_steps`` this session, the ``run_dir``."""

    state: TrainState
    new_steps: int
    run_dir: Path


def _corpus_body(corpus: Path) -> str:
    path = corpus / CORPUS_INDEX
    try:
        return str(json.loads(path.read_text(encoding="utf-8")).get("body_model") or "anny")
    except (OSError, ValueError, AttributeError) as error:
        raise InputError(path, f"not a readable corpus index ({one_line(error)})", CORPUS_FIX) from None


def _union_box(skinnings) -> tuple[list[float], list[float]]:
    low = torch.stack([s.box_min for s in skinnings]).min(dim=0).values
    high = torch.stack([s.box_max for s in skinnings]).max(dim=0).values
    return low.tolist(), high.tolist()


def _payload(model, codes, optimizers, state, settings, corpus, refs, shapes, body_name, sizes,
             adversary=None) -> dict:
    extra = {} if adversary is None else {"adversarial": adversary_state(adversary)}
    return {**extra, "format": FORMAT, "spec": model.spec.to_dict(), "model": model.state_dict(),
            "codes": codes.state_dict(),
            "optimizers": {"coarse": optimizers.coarse.state_dict(), "detail": optimizers.detail.state_dict()},
            "settings": settings.to_dict(), "step": state.step, "spent_s": state.spent_s, "last_loss": state.last_loss,
            "corpus": str(corpus), "scans": [[r.subject, r.frame] for r in refs], "shapes": shapes,
            "body_model": body_name, "sizes": dataclasses.asdict(sizes)}


def train_run(corpus: str | Path, run_dir: str | Path, settings: TrainSettings, *, sizes: TargetSizes = TargetSizes(),
              max_scans: int | None = None, resume: bool = False, context: DistributedContext = DistributedContext(),
              progress: bool = True, skinning: str = "fixed", views: ViewOptions = ViewOptions(),
              discriminator: DiscriminatorOptions = DiscriminatorOptions()) -> TrainResult:
    """Train (or resume, ``resume``) the run in ``run_dir`` on the ``train`` scans of ``corpus``.

    ``max_scans`` keeps the first scans only (None: all). ``skinning`` ("fixed" or "learned") is
    a new run's, like ``sizes``; resuming keeps the run's scans, sizes and skinning; ``settings.steps`` may grow.
    ``views`` and ``discriminator``: the normal-map views and the discriminator of the adversarial
    loss (used when ``settings.adversarial_weight > 0``).
    """
    if skinning not in SKINNINGS:
        raise ValueError(f"train_run: skinning must be one of {SKINNINGS}, got {skinning!r}")
    corpus, run_dir = Path(corpus), Path(run_dir)
    path = run_dir / CHECKPOINT_NAME
    payload = _load_payload(path, RESUME_KEYS) if resume else None
    if payload is None and path.exists():
        raise InputError(path, "already holds a run", "pass --resume to continue it, or choose another --out")
    refs = [ScanRef(str(s), int(f)) for s, f in payload["scans"]] if payload else corpus_scans(corpus, "train")
    refs = refs if payload or max_scans is None else refs[:max_scans]
    if not refs:
        raise InputError(corpus / CORPUS_INDEX, "has no training scans", CORPUS_FIX)
    body_name = payload["body_model"] if payload else _corpus_body(corpus)
    if payload:
        sizes = _stored_sizes(payload, path) if "sizes" in payload else LEGACY_SIZES
    body = load_body_model(body_name)
    learned_run = payload["spec"].get("skinning") is not None if payload else skinning == "learned"
    adversarial = settings.adversarial_weight > 0
    if adversarial and learned_run:
        raise ValueError("the adversarial loss (--adversarial) works with the fixed skinning only")
    scans, skinnings = prepare_scans(corpus, refs, body, sizes, settings.seed, progress=progress and context.is_main,
                                     views=views if adversarial else None)
    shapes = torch.stack([s.shapes for s in scans])
    spec = ModelSpec.from_dict(payload["spec"]) if payload else _new_spec(scans, skinnings, skinning == "learned")
    torch.manual_seed(settings.seed)
    model, codes = GenerativeModel(spec), _codes(spec, len(refs), settings.seed)
    if model.skinning is not None:
        learned = with_learned_skinning([scan.skinning for scan in scans], model.skinning)
        scans = [dataclasses.replace(scan, skinning=person) for scan, person in zip(scans, learned)]
    optimizers = make_optimizers(model, codes, settings)
    state = TrainState()
    if payload:
        model.load_state_dict(payload["model"])
        codes.load_state_dict(payload["codes"])
        optimizers.coarse.load_state_dict(payload["optimizers"]["coarse"])
        optimizers.detail.load_state_dict(payload["optimizers"]["detail"])
        state = TrainState(int(payload["step"]), float(payload["spent_s"]), float(payload.get("last_loss", "nan")))
    adversary = make_adversary(discriminator, settings.discriminator_lr, settings.seed) if adversarial else None
    if adversary is not None and payload and "adversarial" in payload:
        try:
            load_adversary_state(adversary, payload["adversarial"])
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise InputError(path, f"holds a discriminator that does not fit ({one_line(error)})",
                             "resume with the discriminator settings it was trained with") from None
    run_dir.mkdir(parents=True, exist_ok=True)
    start = state.step

    def save(current: TrainState) -> None:
        save_checkpoint(path, _payload(model, codes, optimizers, current, settings, corpus, refs, shapes, body_name,
                                       sizes, adversary))

    state = train(model, codes, optimizers, state, scans, settings, save, context=context, progress=progress,
                  adversary=adversary)
    return TrainResult(state, state.step - start, run_dir)


def _stored_sizes(payload: dict, path: Path) -> TargetSizes:
    """The target sizes a run was prepared with (InputError naming the checkpoint when they are not sizes)."""
    try:
        return TargetSizes(**{key: int(value) for key, value in dict(payload["sizes"]).items()})
    except (TypeError, ValueError) as error:
        raise InputError(path, f"holds unreadable target sizes ({one_line(error)})", RUN_FIX) from None


def _new_spec(scans, skinnings, learned: bool = False) -> ModelSpec:
    """The spec of a new run: the union box of the people, colour when every scan has colours, the skinning
    correction network when ``learned``."""
    coloured = all(scan.normals.colours is not None for scan in scans)
    if not coloured:
        log.info("gdna: not every training scan has vertex colours: no colour network")
    correction = (SkinningOptions(bones=skinnings[0].grid.num_bones, shape_dim=int(scans[0].shapes.numel()))
                  if learned else None)
    return ModelSpec(*_union_box(skinnings), colour=ColourOptions() if coloured else None, skinning=correction)


def _codes(spec: ModelSpec, count: int, seed: int = 0) -> LatentCodes:
    return LatentCodes(count, spec.coarse.latent, spec.detail.latent, seed,
                       colour_width=0 if spec.colour is None else spec.colour.latent)


def _load_payload(path: Path, required: tuple[str, ...]) -> dict:
    payload = load_checkpoint(path, "cpu", required=required)
    if payload.get("format") != FORMAT:
        raise InputError(path, f"not a gDNA run (format {payload.get('format')!r})", RUN_FIX)
    return payload


def load_run(run_dir: str | Path) -> LoadedGenerator:
    """The trained run in ``run_dir`` (InputError naming the checkpoint when it is not one)."""
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise InputError(path, "not found", RUN_FIX)
    payload = _load_payload(path, RUN_KEYS)
    try:
        spec = ModelSpec.from_dict(payload["spec"])
        model = GenerativeModel(spec)
        model.load_state_dict(payload["model"])
        count = len(payload["scans"])
        codes = _codes(spec, count)
        codes.load_state_dict(payload["codes"])
        shapes = torch.as_tensor(payload["shapes"]).float()
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise InputError(path, f"does not fit its own spec ({one_line(error)})", RUN_FIX) from None
    model.eval().requires_grad_(False)
    codes.requires_grad_(False)
    distribution = fit_distribution(codes.shape, codes.detail, shapes, colour_codes=codes.colour)
    return LoadedGenerator(model, codes, shapes, distribution, load_body_model(str(payload["body_model"])), payload)

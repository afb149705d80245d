"""Synthetic skin photos as randomness-as-data: ranges -> drawn parameters -> a pure render.

:class:`SkinFamily` holds every range a photo is drawn from; ``SkinFamily.sample`` draws one
:class:`SkinParams` (frozen, JSON via :func:`medimg.common.families.params_to_dict`); :func:`render`
paints it, deterministically, into a :class:`SkinScene`. The defaults are the ranges the shipped
acne models were trained on.

A photo is a close-up of skin: a tone drawn over a light-to-dark range with a per-image
red/yellow cast, blotchy and fine texture, pores, a gentle lighting gradient with vignetting,
camera blur and sensor noise. On it lie exactly ``n_lesions`` lesions of three kinds:

- papules: small raised red bumps with a faint halo;
- pustules: a red ring around a yellow-white centre;
- nodules: larger, darker, diffuse red swellings;

of varying size, strength and elongation, spread evenly or gathered in clusters. Lesion centres
are placed by rejection sampling on a minimum distance (proportional to the two radii) so that
the count is well defined, and stay inside the frame. Things that are *not* lesions are drawn
too, so that "count red pixels" is not enough: freckles and moles (brown), hairs, pores,
specular highlights on oily skin, flat brown-red marks of healed lesions, and blotchy
background redness.

Units in the parameters: positions and radii of placed things (lesions, spots, hair strands) are
pixels of this photo; every other value is as drawn from its family range, where sizes are
pixels of a 256-pixel photo that the renderer scales to the photo. Noise fields (texture, pores,
oily sheen, sensor noise) are stored as integer seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from medimg.common.errors import InputError, expected
from medimg.common.families import IntRange, Uniform, draw, new_seed, sample_fields
from medimg.common.textures import smooth_noise

LESION_KINDS = ("papule", "pustule", "nodule")
# The reference scale: family sizes are in pixels of a 256-pixel photo and scale with the photo.
_REFERENCE_SIZE = 256.0
# Optical densities per unit of pigment (R, G, B): haemoglobin takes green and blue, so skin
# reddens; the deoxygenated, deeper blood of nodules also takes red, so they look darker.
_HAEMOGLOBIN = np.array([0.2, 1.0, 0.88], dtype=np.float32)
_DEEP_BLOOD = np.array([0.5, 1.2, 1.05], dtype=np.float32)
_MELANIN = np.array([0.75, 1.05, 1.35], dtype=np.float32)
_PUS = np.array([0.95, 0.87, 0.6], dtype=np.float32)
# Skin tones from light to dark (sRGB in [0, 1]), interpolated by a per-image darkness.
_SKIN_TONES = np.array(
    [[0.95, 0.80, 0.71], [0.86, 0.66, 0.54], [0.72, 0.52, 0.39], [0.55, 0.37, 0.26], [0.38, 0.25, 0.17]],
    dtype=np.float32,
)
_NOTHING = Uniform(0.0, 0.0)
_ANY_ORIENTATION = Uniform(0.0, math.pi)
_ANY_DIRECTION = Uniform(0.0, 2.0 * math.pi)

Pair = tuple[float, float]
Channels = tuple[float, float, float]


# ---- ranges that families.py does not have ----------------------------------------------------


@dataclass(frozen=True)
class Beta:
    """A float in [0, 1] from a Beta(a, b) distribution: a bell that can lean towards one end."""

    a: float
    b: float

    def __post_init__(self) -> None:
        if not (self.a > 0 and self.b > 0):
            raise InputError(expected("positive Beta shape parameters", f"({self.a}, {self.b})"))

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.beta(self.a, self.b))

    def contains(self, value: float) -> bool:
        return 0.0 <= value <= 1.0


@dataclass(frozen=True)
class KindMix:
    """Which lesion kinds a photo holds: per photo, kind shares ~ Dirichlet(``concentration``).

    A larger concentration makes a kind more common; narrowing ``kinds`` (for example to
    ``("pustule",)`` with ``concentration=(1.0,)``) draws only those kinds.
    """

    kinds: tuple[str, ...] = LESION_KINDS
    concentration: tuple[float, ...] = (5.0, 3.0, 1.5)

    def __post_init__(self) -> None:
        if not self.kinds or len(set(self.kinds)) != len(self.kinds) or not set(self.kinds) <= set(LESION_KINDS):
            raise InputError(expected(f"distinct lesion kinds out of {', '.join(LESION_KINDS)}", repr(self.kinds)))
        if len(self.concentration) != len(self.kinds) or min(self.concentration) <= 0:
            raise InputError(expected(f"{len(self.kinds)} positive concentrations", repr(self.concentration)))

    def sample(self, rng: np.random.Generator) -> tuple[float, ...]:
        return tuple(float(share) for share in rng.dirichlet(self.concentration))

    def contains(self, kind: str) -> bool:
        return kind in self.kinds


def _per_channel(value: Uniform, rng: np.random.Generator) -> Channels:
    """One draw of ``value`` per colour channel (R, G, B): a colour cast."""
    red, green, blue = (draw(value, rng) for _ in range(3))
    return red, green, blue


def _anywhere(rng: np.random.Generator, shape: tuple[int, int]) -> Pair:
    y, x = rng.random(2) * shape
    return float(y), float(x)


def _scales(shape: tuple[int, int]) -> tuple[float, float]:
    """(scale, lesion scale): the photo's size relative to the 256-pixel reference.

    Below 1 px a lesion vanishes; small photos stay countable by not shrinking lesions (and
    spots, creases, pores) below 0.45 of their reference size.
    """
    scale = min(shape) / _REFERENCE_SIZE
    return scale, max(scale, 0.45)


def check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(expected(f"{name} as an integer >= {minimum}", repr(value)))
    return int(value)


def as_size(size: int | tuple[int, int]) -> tuple[int, int]:
    """``size`` (an int or (H, W)) as (H, W), each at least 16 pixels."""
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InputError(expected("size as an int or (H, W)", repr(size))) from None
    if height < 16 or width < 16:
        raise InputError(expected("a photo size of at least 16 x 16 pixels", f"{height} x {width}"))
    return height, width


# ---- parameters: what one photo drew ----------------------------------------------------------


@dataclass(frozen=True)
class LesionParams:
    """One lesion. ``y``, ``x``, ``radius`` in pixels of the photo; ``kind`` one of ``LESION_KINDS``.

    ``strength`` multiplies the photo's ``inflammation``; ``raised`` (bump height) and ``cap``
    (pus cap width) are in radii; ``dusk`` (deoxygenated blood) is in units of the strength;
    ``glint`` is the brightness of a wet highlight (0: none).
    """

    kind: str
    y: float
    x: float
    radius: float
    elongation: float
    angle: float
    strength: float
    raised: float
    dusk: float
    cap: float
    pus_opacity: float
    glint: float


@dataclass(frozen=True)
class SpotParams:
    """A freckle, mole, healed mark or glint: an elliptic blob, ``radius`` across (pixels) and
    ``radius * elongation`` along ``angle``. ``amount``: pigment (or gloss); ``raised``: height in
    radii (moles); ``redness``: haemoglobin (healed marks)."""

    y: float
    x: float
    radius: float
    elongation: float
    angle: float
    amount: float
    raised: float
    redness: float


@dataclass(frozen=True)
class StrandParams:
    """One hair: a quadratic Bezier curve from ``start`` to ``end`` bent towards ``control``, (y, x) pixels."""

    start: Pair
    control: Pair
    end: Pair


@dataclass(frozen=True)
class SurfaceParams:
    darkness: float  # 0 = lightest skin tone, 1 = darkest
    tone_cast: Channels
    crease_depth: float
    flush: float  # background redness that is not a lesion
    pore_density: float  # pores per pixel
    pore_depth: float
    texture_seed: int
    flush_seed: int
    pore_seed: int


@dataclass(frozen=True)
class DistractorParams:
    freckles: tuple[SpotParams, ...]
    moles: tuple[SpotParams, ...]
    healed_marks: tuple[SpotParams, ...]
    glints: tuple[SpotParams, ...]
    oiliness: float
    sheen_seed: int


@dataclass(frozen=True)
class HairParams:
    strands: tuple[StrandParams, ...]
    thickness: float  # Gaussian width of a strand, reference pixels
    opacity: float
    darkness: float  # hair colour as a share of the skin tone


@dataclass(frozen=True)
class CameraParams:
    light_angle: float  # direction the light comes from: raised lesions are lit on this side
    exposure: float
    gradient: float  # linear brightness change across the photo
    gradient_angle: float
    vignetting: float
    white_balance: Channels
    blur: float  # Gaussian sigma, reference pixels
    noise: float  # sensor noise std, in [0, 1] intensity
    noise_seed: int


@dataclass(frozen=True)
class SkinParams:
    """Everything one synthetic photo drew; :func:`render` turns it into the photo.

    ``size`` is (H, W); ``lesions`` the counted lesions; ``inflammation`` the photo's lesion
    strength (inflamed vs quiet acne); ``pus_tint`` the cast of pustule caps (R, G, B).
    """

    size: tuple[int, int]
    lesions: tuple[LesionParams, ...]
    inflammation: float
    pus_tint: Channels
    surface: SurfaceParams
    distractors: DistractorParams
    hair: HairParams
    camera: CameraParams


# ---- families: the ranges ---------------------------------------------------------------------


@dataclass(frozen=True)
class LesionKindRanges:
    """Ranges of one lesion kind: ``radius`` in reference pixels, the rest as in :class:`LesionParams`.

    ``glint_chance``: probability of a wet highlight on the lit flank.
    """

    radius: Uniform
    raised: Uniform
    dusk: Uniform = _NOTHING
    cap: Uniform = _NOTHING
    pus_opacity: Uniform = _NOTHING
    glint_chance: float = 0.0


@dataclass(frozen=True)
class PlacementRanges:
    """How lesion centres are spread: in clusters (``clustered_chance`` of the photos) or evenly.

    Cluster centres lie in ``cluster_centre`` of the photo's height and width, clusters are
    ``cluster_spread`` of the short side wide, and ``loose_share`` of the candidates of a
    clustered photo still land anywhere, as on real skin. Centres keep ``separation * (r_i + r_j)``
    apart.
    """

    clustered_chance: float = 0.45
    cluster_count: IntRange = IntRange(1, 4)
    cluster_centre: Uniform = Uniform(0.15, 0.85)
    cluster_spread: Uniform = Uniform(0.07, 0.18)
    loose_share: float = 0.3
    separation: float = 1.25


@dataclass(frozen=True)
class SpotRanges:
    """Ranges of one kind of spot; ``radius`` in reference pixels (see :class:`SpotParams`)."""

    radius: Uniform
    elongation: Uniform
    amount: Uniform
    raised: Uniform = _NOTHING
    redness: Uniform = _NOTHING

    def sample(self, rng: np.random.Generator, position: Pair, lesion_scale: float) -> SpotParams:
        return SpotParams(
            y=float(position[0]),
            x=float(position[1]),
            radius=draw(self.radius, rng) * lesion_scale,
            elongation=draw(self.elongation, rng),
            angle=draw(_ANY_ORIENTATION, rng),
            amount=draw(self.amount, rng),
            raised=draw(self.raised, rng),
            redness=draw(self.redness, rng),
        )


@dataclass(frozen=True)
class SurfaceFamily:
    """Skin tone (``darkness`` across the light-to-dark tones, a per-channel cast), texture, pores."""

    darkness: Beta = Beta(2.0, 2.6)
    tone_cast: Uniform = Uniform(0.96, 1.04)
    crease_depth: Uniform = Uniform(0.02, 0.07)
    flush: Uniform = Uniform(0.0, 0.1)
    pore_density: Uniform = Uniform(0.002, 0.007)
    pore_depth: Uniform = Uniform(0.05, 0.18)

    def sample(self, rng: np.random.Generator) -> SurfaceParams:
        seeds = {"texture_seed": new_seed(rng), "flush_seed": new_seed(rng), "pore_seed": new_seed(rng)}
        return sample_fields(self, SurfaceParams, rng, tone_cast=_per_channel(self.tone_cast, rng), **seeds)


@dataclass(frozen=True)
class DistractorFamily:
    """Things that are not lesions: freckles, moles, healed marks, glints of oily skin.

    Freckles appear in ``freckle_chance`` of the photos, ``freckle_count`` of them around one
    centre, ``freckle_spread`` of the short side wide; moles and healed marks are Poisson counts
    with mean ``mole_rate`` and ``healed_mark_rate``; glints a Poisson count with mean
    ``glint_rate * oiliness`` per 256 x 256 pixels.
    """

    freckle_chance: float = 0.55
    freckle_count: IntRange = IntRange(5, 69)
    freckle_spread: Uniform = Uniform(0.2, 0.6)
    freckle: SpotRanges = SpotRanges(radius=Uniform(0.8, 2.3), elongation=Uniform(0.8, 1.3), amount=Uniform(0.12, 0.4))
    mole_rate: float = 0.7
    mole: SpotRanges = SpotRanges(
        radius=Uniform(1.8, 4.5), elongation=Uniform(0.9, 1.2), amount=Uniform(0.9, 1.8), raised=Uniform(0.0, 0.5)
    )
    healed_mark_rate: Uniform = Uniform(0.0, 6.0)
    healed_mark: SpotRanges = SpotRanges(
        radius=Uniform(2.5, 6.0), elongation=Uniform(1.0, 1.5), amount=Uniform(0.1, 0.3), redness=Uniform(0.05, 0.15)
    )
    oiliness: Uniform = Uniform(0.0, 1.0)
    glint_rate: float = 8.0
    # streaks three times as long as wide
    glint: SpotRanges = SpotRanges(radius=Uniform(0.75, 2.0), elongation=Uniform(3.0, 3.0), amount=Uniform(0.1, 0.35))

    def sample(self, rng: np.random.Generator, shape: tuple[int, int]) -> DistractorParams:
        scale, lesion_scale = _scales(shape)
        freckles: tuple[SpotParams, ...] = ()
        if rng.random() < self.freckle_chance:
            count = draw(self.freckle_count, rng)
            centre = np.array(_anywhere(rng, shape))
            spread = draw(self.freckle_spread, rng) * min(shape)
            freckles = tuple(
                self.freckle.sample(rng, tuple(centre + rng.normal(0.0, spread, 2)), lesion_scale) for _ in range(count)
            )

        def scattered(ranges: SpotRanges, mean_count: float) -> tuple[SpotParams, ...]:
            return tuple(ranges.sample(rng, _anywhere(rng, shape), lesion_scale) for _ in range(int(rng.poisson(mean_count))))

        moles = scattered(self.mole, self.mole_rate)
        healed_marks = scattered(self.healed_mark, draw(self.healed_mark_rate, rng))
        oiliness = draw(self.oiliness, rng)
        glints = scattered(self.glint, self.glint_rate * oiliness * max(scale, 0.25) ** 2)
        return DistractorParams(freckles, moles, healed_marks, glints, oiliness=oiliness, sheen_seed=new_seed(rng))


@dataclass(frozen=True)
class HairFamily:
    """Hairs in ``chance`` of the photos, ``count`` curved strands ``length`` of the short side
    long, bent by ``bend`` of their length (standard deviation)."""

    chance: float = 0.6
    count: IntRange = IntRange(1, 15)
    length: Uniform = Uniform(0.12, 0.6)
    bend: float = 0.18
    thickness: Uniform = Uniform(0.45, 0.9)
    opacity: Uniform = Uniform(0.55, 0.9)
    darkness: Uniform = Uniform(0.04, 0.3)

    def sample(self, rng: np.random.Generator, shape: tuple[int, int]) -> HairParams:
        count = draw(self.count, rng) if rng.random() < self.chance else 0
        return sample_fields(self, HairParams, rng, strands=tuple(self._strand(rng, shape) for _ in range(count)))

    def _strand(self, rng: np.random.Generator, shape: tuple[int, int]) -> StrandParams:
        start = np.array(_anywhere(rng, shape))
        direction = draw(_ANY_DIRECTION, rng)
        length = draw(self.length, rng) * min(shape)
        end = start + length * np.array([math.sin(direction), math.cos(direction)])
        control = (start + end) / 2 + rng.normal(0.0, self.bend * length, 2)
        return StrandParams(*(tuple(float(v) for v in point) for point in (start, control, end)))


@dataclass(frozen=True)
class CameraFamily:
    """Illumination and camera: light direction, exposure, lighting gradient, vignetting, white
    balance (per channel), blur (reference pixels) and sensor noise."""

    light_angle: Uniform = _ANY_DIRECTION
    exposure: Uniform = Uniform(0.82, 1.08)
    gradient: Uniform = Uniform(0.0, 0.22)
    gradient_angle: Uniform = _ANY_DIRECTION
    vignetting: Uniform = Uniform(0.0, 0.3)
    white_balance: Uniform = Uniform(0.95, 1.05)
    blur: Uniform = Uniform(0.3, 0.8)
    noise: Uniform = Uniform(0.004, 0.018)

    def sample(self, rng: np.random.Generator) -> CameraParams:
        return sample_fields(
            self, CameraParams, rng, white_balance=_per_channel(self.white_balance, rng), noise_seed=new_seed(rng)
        )


@dataclass(frozen=True)
class SkinFamily:
    """The ranges of synthetic skin photos with acne; defaults are those the shipped models saw.

    Lesions: ``kind_mix`` picks the kinds, ``papule`` / ``pustule`` / ``nodule`` their sizes and
    shapes; each lesion draws ``lesion_elongation``, ``lesion_strength`` (times the photo's
    ``inflammation``) and, if it glints, ``lesion_glint``; ``placement`` spreads them. The skin
    around them comes from the sub-families ``surface``, ``distractors``, ``hair``, ``camera``.
    """

    kind_mix: KindMix = KindMix()
    papule: LesionKindRanges = LesionKindRanges(
        radius=Uniform(2.5, 5.5), raised=Uniform(0.5, 1.1), dusk=Uniform(0.0, 0.35), glint_chance=0.2
    )
    pustule: LesionKindRanges = LesionKindRanges(
        radius=Uniform(3.0, 6.0), raised=Uniform(0.7, 1.2), cap=Uniform(0.35, 0.55), pus_opacity=Uniform(0.5, 0.9), glint_chance=0.2
    )
    nodule: LesionKindRanges = LesionKindRanges(radius=Uniform(6.0, 11.0), raised=Uniform(0.3, 0.6))
    lesion_elongation: Uniform = Uniform(1.0, 1.35)
    lesion_strength: Uniform = Uniform(0.7, 1.3)
    lesion_glint: Uniform = Uniform(0.3, 0.6)
    inflammation: Uniform = Uniform(0.45, 0.9)
    pus_tint: Uniform = Uniform(0.9, 1.02)
    placement: PlacementRanges = PlacementRanges()
    surface: SurfaceFamily = SurfaceFamily()
    distractors: DistractorFamily = DistractorFamily()
    hair: HairFamily = HairFamily()
    camera: CameraFamily = CameraFamily()

    def kind_ranges(self, kind: str) -> LesionKindRanges:
        if kind not in LESION_KINDS:
            raise InputError(expected(f"a lesion kind out of {', '.join(LESION_KINDS)}", repr(kind)))
        return getattr(self, kind)

    def sample(self, rng: np.random.Generator, *, n_lesions: int, size: int | tuple[int, int] = (256, 256)) -> SkinParams:
        """Draw one photo's parameters with exactly ``n_lesions`` lesions.

        Parameters
        ----------
        rng : numpy.random.Generator
            The only source of randomness: the same generator state gives the same parameters.
        n_lesions : int
            Number of lesions, >= 0.
        size : int or (H, W)
            Photo size in pixels (at least 16 x 16).
        """
        n_lesions = check_int("n_lesions", n_lesions, 0)
        shape = as_size(size)
        # One stream per part of the photo, so that narrowing one part's ranges (no hair, other
        # lesion counts) leaves the other parts of a seed's photo as they were.
        lesion_rng, surface_rng, distractor_rng, hair_rng, camera_rng = (np.random.default_rng(new_seed(rng)) for _ in range(5))
        # the photo's acne colour comes first, so that it does not change with the lesion count
        inflammation = draw(self.inflammation, lesion_rng)
        pus_tint = _per_channel(self.pus_tint, lesion_rng)
        return SkinParams(
            size=shape,
            lesions=self._sample_lesions(lesion_rng, n_lesions, shape),
            inflammation=inflammation,
            pus_tint=pus_tint,
            surface=self.surface.sample(surface_rng),
            distractors=self.distractors.sample(distractor_rng, shape),
            hair=self.hair.sample(hair_rng, shape),
            camera=self.camera.sample(camera_rng),
        )

    def _sample_lesions(self, rng: np.random.Generator, n: int, shape: tuple[int, int]) -> tuple[LesionParams, ...]:
        _, lesion_scale = _scales(shape)
        shares = self.kind_mix.sample(rng)
        kinds = [self.kind_mix.kinds[i] for i in rng.choice(len(shares), size=n, p=shares)]
        radii = np.array([draw(self.kind_ranges(kind).radius, rng) * lesion_scale for kind in kinds])
        centres = _place_lesions(rng, radii, shape, lesion_scale, self.placement)
        return tuple(self._sample_lesion(rng, kind, centre, radius) for kind, centre, radius in zip(kinds, centres, radii))

    def _sample_lesion(self, rng: np.random.Generator, kind: str, centre: np.ndarray, radius: float) -> LesionParams:
        ranges = self.kind_ranges(kind)
        return LesionParams(
            kind=kind,
            y=float(centre[0]),
            x=float(centre[1]),
            radius=float(radius),
            elongation=draw(self.lesion_elongation, rng),
            angle=draw(_ANY_ORIENTATION, rng),
            strength=draw(self.lesion_strength, rng),
            raised=draw(ranges.raised, rng),
            dusk=draw(ranges.dusk, rng),
            cap=draw(ranges.cap, rng),
            pus_opacity=draw(ranges.pus_opacity, rng),
            glint=draw(self.lesion_glint, rng) if rng.random() < ranges.glint_chance else 0.0,
        )


def _place_lesions(
    rng: np.random.Generator, radii: np.ndarray, shape: tuple[int, int], scale: float, placement: PlacementRanges
) -> np.ndarray:
    """Centres ``(N, 2)`` float64 (y, x) with centre distances >= ``separation * (r_i + r_j)``.

    When a lesion finds no room after a few batches of candidates the separation relaxes, so a
    crowded small photo still receives exactly N lesions (a little closer together).
    """
    height, width = shape
    centres = np.zeros((len(radii), 2), dtype=np.float64)
    if len(radii) == 0:
        return centres
    draw_candidates = _candidate_sampler(rng, shape, placement)
    separation = placement.separation
    for i, radius in enumerate(radii):
        margin = radius + 1.0
        placed = False
        while not placed:
            for _attempt in range(6):
                candidates = draw_candidates()
                inside = np.all((candidates >= margin) & (candidates <= (height - 1 - margin, width - 1 - margin)), axis=1)
                gaps = np.linalg.norm(candidates[:, None, :] - centres[None, :i, :], axis=2)
                free = np.all(gaps >= separation * (radii[None, :i] + radius) + 1.0 * scale, axis=1)
                good = np.flatnonzero(inside & free)
                if good.size:
                    centres[i] = candidates[good[0]]
                    placed = True
                    break
            else:
                separation *= 0.85
                if separation < 0.05:
                    # nothing left to relax: the photo is simply too small for this many lesions
                    centres[i] = rng.uniform(margin, (height - 1 - margin, width - 1 - margin))
                    placed = True
    return centres


def _candidate_sampler(
    rng: np.random.Generator, shape: tuple[int, int], placement: PlacementRanges, batch: int = 48
) -> Callable[[], np.ndarray]:
    """A function drawing ``(batch, 2)`` candidate centres (y, x): around this photo's clusters if
    it is a clustered one (a share still anywhere), else anywhere."""
    height, width = shape
    clustered = rng.random() < placement.clustered_chance
    n_clusters = draw(placement.cluster_count, rng)
    window = placement.cluster_centre
    cluster_centres = np.column_stack(
        [rng.uniform(window.low, window.high, n_clusters) * height, rng.uniform(window.low, window.high, n_clusters) * width]
    )
    cluster_spread = draw(placement.cluster_spread, rng) * min(height, width)

    def anywhere() -> np.ndarray:
        return rng.random((batch, 2)) * (height, width)

    def around_clusters() -> np.ndarray:
        candidates = cluster_centres[rng.integers(0, n_clusters, batch)] + rng.normal(0.0, cluster_spread, (batch, 2))
        loose = rng.random(batch) < placement.loose_share
        candidates[loose] = rng.random((int(loose.sum()), 2)) * (height, width)
        return candidates

    return around_clusters if clustered else anywhere


# ---- rendering: pure given the parameters -----------------------------------------------------


@dataclass(frozen=True)
class SkinScene:
    """A synthetic photo and the lesions drawn on it.

    image : (H, W, 3) ndarray of uint8
    lesions : (N, 4) ndarray of float64, one row per lesion: centre y, centre x (pixels),
        radius (pixels), kind (index into ``LESION_KINDS``)
    """

    image: np.ndarray
    lesions: np.ndarray


@dataclass
class _Layers:
    """(H, W) float32 maps the painters add to (in place), composed into the photo at the end: pigment
    densities, bump height (for shading), pus opacity and specular gloss."""

    haemoglobin: np.ndarray
    deep_blood: np.ndarray
    melanin: np.ndarray
    height: np.ndarray
    pus: np.ndarray
    gloss: np.ndarray

    @classmethod
    def blank(cls, shape: tuple[int, int]) -> _Layers:
        return cls(*(np.zeros(shape, dtype=np.float32) for _ in range(6)))


def _stamp(
    target: np.ndarray,
    cy: float,
    cx: float,
    sigma_y: float,
    sigma_x: float,
    angle: float,
    amount: float,
    *,
    sharpness: float = 1.0,
) -> None:
    """Add ``amount`` times an (elliptic, rotated) Gaussian blob to ``target`` (H, W) in place.

    ``sharpness`` > 1 gives a super-Gaussian: a flatter top and a crisper edge (moles, pus).
    """
    height, width = target.shape
    reach = int(math.ceil(3.2 * max(sigma_y, sigma_x))) + 1
    y0, y1 = max(0, int(cy) - reach), min(height, int(cy) + reach + 2)
    x0, x1 = max(0, int(cx) - reach), min(width, int(cx) + reach + 2)
    if y0 >= y1 or x0 >= x1:
        return
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
    cos, sin = np.float32(math.cos(angle)), np.float32(math.sin(angle))
    along = (dx * cos + dy * sin) / np.float32(sigma_x)
    across = (-dx * sin + dy * cos) / np.float32(sigma_y)
    q = along * along + across * across
    if sharpness != 1.0:
        q = q ** np.float32(sharpness)
    target[y0:y1, x0:x1] += np.float32(amount) * np.exp(np.float32(-0.5) * q)


def _skin_tone(surface: SurfaceParams) -> np.ndarray:
    """The photo's base colour, (3,) float32 RGB in [0, 1]."""
    position = surface.darkness * (len(_SKIN_TONES) - 1)
    low = int(min(math.floor(position), len(_SKIN_TONES) - 2))
    tone = _SKIN_TONES[low] + np.float32(position - low) * (_SKIN_TONES[low + 1] - _SKIN_TONES[low])
    return tone * np.asarray(surface.tone_cast, dtype=np.float32)


def _textured_skin(tone: np.ndarray, surface: SurfaceParams, shape: tuple[int, int]) -> np.ndarray:
    """Skin of ``tone`` with blotches, grain and creases: (H, W, 3) float32."""
    scale, lesion_scale = _scales(shape)
    rng = np.random.default_rng(surface.texture_seed)
    blotches = smooth_noise(rng, shape, 18.0 * scale + 1.0, coarse=True)
    grain = smooth_noise(rng, shape, 2.5 * scale + 0.5, coarse=True)
    # zero crossings of a mid-scale field form a net of fine creases, like the skin's surface lines
    crease_field = smooth_noise(rng, shape, 3.5 * lesion_scale + 0.5, coarse=True)
    creases = np.exp(-((crease_field / np.float32(0.16)) ** 2))
    brightness = 1.0 + 0.035 * blotches + 0.02 * grain - np.float32(surface.crease_depth) * creases
    return tone * brightness[..., None]


def _pores(surface: SurfaceParams, shape: tuple[int, int]) -> np.ndarray:
    """Pore darkening factor (H, W) float32 in [1 - pore_depth, 1]: many tiny pits."""
    from scipy.ndimage import gaussian_filter

    height, width = shape
    _, lesion_scale = _scales(shape)
    rng = np.random.default_rng(surface.pore_seed)
    n_pores = int(surface.pore_density * height * width)
    pits = np.zeros(shape, dtype=np.float32)
    pits[rng.integers(0, height, n_pores), rng.integers(0, width, n_pores)] = 1.0
    pits = gaussian_filter(pits, 0.6 * lesion_scale + 0.2)
    pits /= np.float32(pits.max() + 1e-8)
    return 1.0 - np.float32(surface.pore_depth) * pits


def _paint_flush(layers: _Layers, surface: SurfaceParams) -> None:
    """Diffuse background redness (flushing, faded marks) that is not a lesion."""
    scale, _ = _scales(layers.haemoglobin.shape)
    field = smooth_noise(np.random.default_rng(surface.flush_seed), layers.haemoglobin.shape, 14.0 * scale + 1.0, coarse=True)
    layers.haemoglobin += np.float32(surface.flush) * np.clip(field + 0.5, 0.0, None)


def _lesion_blob(target: np.ndarray, lesion: LesionParams, spread: float, amount: float, *, sharpness: float = 1.0) -> None:
    """Stamp a blob shaped like ``lesion`` (its elongation and angle), ``spread`` radii wide."""
    root = math.sqrt(lesion.elongation)
    sigma_y, sigma_x = spread * lesion.radius / root, spread * lesion.radius * root
    _stamp(target, lesion.y, lesion.x, sigma_y, sigma_x, lesion.angle, amount, sharpness=sharpness)


def _paint_papule(layers: _Layers, lesion: LesionParams, strength: float) -> None:
    _lesion_blob(layers.haemoglobin, lesion, 0.7, 0.9 * strength)
    _lesion_blob(layers.deep_blood, lesion, 0.5, lesion.dusk * strength)  # older papules turn duskier
    _lesion_blob(layers.haemoglobin, lesion, 1.5, 0.2 * strength)  # faint halo
    _lesion_blob(layers.height, lesion, 0.7, lesion.raised * lesion.radius)


def _paint_pustule(layers: _Layers, lesion: LesionParams, strength: float) -> None:
    _lesion_blob(layers.haemoglobin, lesion, 0.8, 1.05 * strength, sharpness=1.1)
    _lesion_blob(layers.haemoglobin, lesion, 1.6, 0.22 * strength)
    _lesion_blob(layers.pus, lesion, lesion.cap, lesion.pus_opacity, sharpness=1.6)
    _lesion_blob(layers.height, lesion, 0.65, lesion.raised * lesion.radius)


def _paint_nodule(layers: _Layers, lesion: LesionParams, strength: float) -> None:
    _lesion_blob(layers.deep_blood, lesion, 0.55, 0.7 * strength)
    _lesion_blob(layers.haemoglobin, lesion, 0.95, 0.5 * strength)
    _lesion_blob(layers.height, lesion, 0.75, lesion.raised * lesion.radius)


_LESION_PAINTERS: dict[str, Callable[[_Layers, LesionParams, float], None]] = {
    "papule": _paint_papule,
    "pustule": _paint_pustule,
    "nodule": _paint_nodule,
}


def _paint_lesion(layers: _Layers, lesion: LesionParams, inflammation: float, light_angle: float) -> None:
    painter = _LESION_PAINTERS.get(lesion.kind)
    if painter is None:
        raise InputError(expected(f"a lesion kind out of {', '.join(LESION_KINDS)}", repr(lesion.kind)))
    painter(layers, lesion, inflammation * lesion.strength)
    if lesion.glint > 0:
        # a wet glint on the lit flank of a raised lesion
        towards_light = 0.35 * lesion.radius
        cy = lesion.y - towards_light * math.sin(light_angle)
        cx = lesion.x - towards_light * math.cos(light_angle)
        _stamp(layers.gloss, cy, cx, 0.25 * lesion.radius, 0.3 * lesion.radius, lesion.angle, lesion.glint)


def _spot(target: np.ndarray, spot: SpotParams, amount: float, *, sharpness: float = 1.0) -> None:
    _stamp(target, spot.y, spot.x, spot.radius, spot.radius * spot.elongation, spot.angle, amount, sharpness=sharpness)


def _paint_distractors(layers: _Layers, distractors: DistractorParams) -> None:
    """Freckles and moles (brown), flat brown-red healed marks, and the gloss of oily skin."""
    for freckle in distractors.freckles:
        _spot(layers.melanin, freckle, freckle.amount)
    for mole in distractors.moles:
        _spot(layers.melanin, mole, mole.amount, sharpness=2.0)
        _stamp(layers.height, mole.y, mole.x, mole.radius, mole.radius, 0.0, mole.raised * mole.radius)
    for mark in distractors.healed_marks:
        _spot(layers.melanin, mark, mark.amount, sharpness=1.5)
        _spot(layers.haemoglobin, mark, mark.redness, sharpness=1.5)
    for glint in distractors.glints:
        _spot(layers.gloss, glint, glint.amount)
    scale, _ = _scales(layers.gloss.shape)
    sheen = smooth_noise(np.random.default_rng(distractors.sheen_seed), layers.gloss.shape, 25.0 * scale + 1.0, coarse=True)
    layers.gloss += np.float32(0.12 * distractors.oiliness) * np.clip(sheen - 1.0, 0.0, None)


def _absorb(skin: np.ndarray, layers: _Layers, pores: np.ndarray, pus_tint: Channels) -> np.ndarray:
    """Skin seen through its pigments (Beer-Lambert), pitted by pores, under pus caps: (H, W, 3) float32."""
    density = (
        layers.haemoglobin[..., None] * _HAEMOGLOBIN
        + layers.deep_blood[..., None] * _DEEP_BLOOD
        + layers.melanin[..., None] * _MELANIN
    )
    photo = skin * np.exp(-density) * pores[..., None]
    pus = np.clip(layers.pus, 0.0, 1.0)[..., None]
    return photo * (1.0 - pus) + _PUS * np.asarray(pus_tint, dtype=np.float32) * pus


def _shade(photo: np.ndarray, height: np.ndarray, light_angle: float) -> np.ndarray:
    """Raised things catch the light on one side and shade the other."""
    from scipy.ndimage import gaussian_filter

    slope_y, slope_x = np.gradient(gaussian_filter(height, 0.6))
    shading = 1.0 - 0.25 * (slope_y * np.float32(math.sin(light_angle)) + slope_x * np.float32(math.cos(light_angle)))
    return photo * np.clip(shading, 0.6, 1.4)[..., None]


def _hair_opacity(hair: HairParams, shape: tuple[int, int]) -> np.ndarray:
    """Opacity (H, W) float32 in [0, 1] of the hair strands (quadratic Bezier strokes)."""
    from scipy.ndimage import gaussian_filter

    height, width = shape
    scale, _ = _scales(shape)
    alpha = np.zeros(shape, dtype=np.float32)
    for strand in hair.strands:
        start, control, end = (np.asarray(point) for point in (strand.start, strand.control, strand.end))
        t = np.linspace(0.0, 1.0, max(8, int(np.linalg.norm(end - start) * 2.5)))[:, None]
        points = (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end
        rows = np.rint(points[:, 0]).astype(np.int64)
        cols = np.rint(points[:, 1]).astype(np.int64)
        keep = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        # hairs taper: draw the stroke darker near its root
        strength = np.linspace(1.0, 0.55, len(t))[keep]
        np.maximum.at(alpha, (rows[keep], cols[keep]), strength.astype(np.float32))
    thickness = hair.thickness * max(scale, 0.5)
    # the Gaussian's peak height: a filtered one-pixel line keeps its darkness at any thickness
    alpha = gaussian_filter(alpha, thickness) * np.float32(math.sqrt(2 * math.pi) * thickness * 1.1)
    return np.clip(alpha, 0.0, 1.0) * np.float32(hair.opacity)


def _overlay(photo: np.ndarray, opacity: np.ndarray, colour: np.ndarray | float) -> np.ndarray:
    alpha = opacity[..., None]
    return photo * (1.0 - alpha) + colour * alpha


def _photograph(photo: np.ndarray, camera: CameraParams) -> np.ndarray:
    """Lighting, white balance, blur, sensor noise and quantisation: (H, W, 3) uint8."""
    from scipy.ndimage import gaussian_filter

    height, width = photo.shape[:2]
    scale, _ = _scales((height, width))
    yy = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    xx = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    along = xx * math.cos(camera.gradient_angle) + yy * math.sin(camera.gradient_angle)
    lighting = camera.exposure * (1.0 + camera.gradient * along) * (1.0 - camera.vignetting * (xx * xx + yy * yy) / 2.0)
    photo = photo * lighting[..., None] * np.asarray(camera.white_balance, dtype=np.float32)
    blur = camera.blur * max(scale, 0.5)
    photo = gaussian_filter(photo, (blur, blur, 0.0))
    noise = np.random.default_rng(camera.noise_seed).standard_normal(photo.shape, dtype=np.float32)
    photo += np.float32(camera.noise) * noise
    return np.clip(np.rint(photo * 255.0), 0, 255).astype(np.uint8)


def lesion_table(lesions: tuple[LesionParams, ...]) -> np.ndarray:
    """The lesions as ``(N, 4)`` float64 rows: centre y, centre x, radius (pixels), kind index."""
    rows = [(lesion.y, lesion.x, lesion.radius, float(LESION_KINDS.index(lesion.kind))) for lesion in lesions]
    return np.array(rows, dtype=np.float64).reshape(len(rows), 4)


def render(params: SkinParams) -> SkinScene:
    """Paint the photo ``params`` describe; pure: the same parameters give the same pixels.

    Returns
    -------
    SkinScene
        ``image`` (H, W, 3) ndarray of uint8 RGB, ``lesions`` (N, 4) ndarray of float64
        (y, x, radius, kind index).
    """
    shape = as_size(params.size)
    tone = _skin_tone(params.surface)
    layers = _Layers.blank(shape)
    _paint_flush(layers, params.surface)
    for lesion in params.lesions:
        _paint_lesion(layers, lesion, params.inflammation, params.camera.light_angle)
    _paint_distractors(layers, params.distractors)
    photo = _absorb(_textured_skin(tone, params.surface, shape), layers, _pores(params.surface, shape), params.pus_tint)
    photo = _shade(photo, layers.height, params.camera.light_angle)
    if params.hair.strands:
        hair_colour = np.float32(params.hair.darkness) * tone / tone.max()
        photo = _overlay(photo, _hair_opacity(params.hair, shape), hair_colour)
    photo = _overlay(photo, np.clip(layers.gloss, 0.0, 0.85), 1.0)
    return SkinScene(image=_photograph(photo, params.camera), lesions=lesion_table(params.lesions))

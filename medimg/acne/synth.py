"""Synthetic skin photos with a known number of acne lesions, written in the ACNE04 layout.

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

Lesion counts (``draw_lesion_counts``): the real ACNE04 split files are skewed to mild acne
(in ``data/acne04_NNEW_trainval_sample.txt`` grades 0/1/2/3 hold 35/43/13/9 % of the images).
For training we draw a balanced mixture instead: grades are dealt in equal shares (so all four
appear as soon as there are four images) and the count is uniform within the grade's Hayashi
range, 1..5, 6..20, 21..50, 51..65. Rare heavy cases are then not starved of examples; a model
trained on it is not biased towards "mild".

``write_synthetic_dataset`` writes ``JPEGImages/levle{grade}_{i}.jpg`` (JPEG quality 92, no
chroma subsampling so that small red lesions keep their colour) and five stratified folds
``NNEW_trainval_k.txt`` / ``NNEW_test_k.txt``. The same seed gives byte-identical files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medimg.acne.dataset import IMAGES_DIR, SplitEntry, split_file_path, write_split_file
from medimg.acne.labels import HAYASHI, N_COUNT_BINS, N_GRADES, grade_of_count
from medimg.common.console import track
from medimg.common.errors import InputError, OutputError, expected
from medimg.common.outputs import atomic_path

JPEG_QUALITY = 92
LESION_KINDS = ("papule", "pustule", "nodule")
# The reference scale: sizes below are in pixels of a 256-pixel photo and scale with the photo.
_REFERENCE_SIZE = 256.0
# Optical densities per unit of pigment (R, G, B): haemoglobin takes green and blue, so skin
# reddens; the deoxygenated, deeper blood of nodules also takes red, so they look darker.
_HAEMOGLOBIN = np.array([0.2, 1.0, 0.88], dtype=np.float32)
_DEEP_BLOOD = np.array([0.5, 1.2, 1.05], dtype=np.float32)
_MELANIN = np.array([0.75, 1.05, 1.35], dtype=np.float32)
# Skin tones from light to dark (sRGB in [0, 1]), interpolated by a per-image darkness.
_SKIN_TONES = np.array(
    [[0.95, 0.80, 0.71], [0.86, 0.66, 0.54], [0.72, 0.52, 0.39], [0.55, 0.37, 0.26], [0.38, 0.25, 0.17]],
    dtype=np.float32,
)


@dataclass(frozen=True)
class SkinScene:
    """A synthetic photo and the lesions drawn on it.

    image : (H, W, 3) ndarray of uint8
    lesions : (N, 4) ndarray of float64, one row per lesion: centre y, centre x (pixels),
        radius (pixels), kind (index into ``LESION_KINDS``)
    """

    image: np.ndarray
    lesions: np.ndarray


def _as_size(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InputError(expected("size as an int or (H, W)", repr(size))) from None
    if height < 16 or width < 16:
        raise InputError(expected("a photo size of at least 16 x 16 pixels", f"{height} x {width}"))
    return height, width


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
    """Add ``amount`` times an (elliptic, rotated) Gaussian blob to ``target`` in place.

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


def _upsample_bilinear(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a coarse ``(h, w)`` grid (h, w >= 2) onto ``shape``, pixel centres aligned."""
    out = small
    for axis, (n_small, n_big) in enumerate(zip(small.shape, shape)):
        position = (np.arange(n_big, dtype=np.float32) + 0.5) * np.float32(n_small / n_big) - 0.5
        position = np.clip(position, 0, n_small - 1)
        lower = np.minimum(position.astype(np.int64), n_small - 2)  # callers pass n_small >= 2
        weight = (position - lower).reshape((-1, 1) if axis == 0 else (1, -1))
        first = np.take(out, lower, axis=axis)
        second = np.take(out, lower + 1, axis=axis)
        out = first + (second - first) * weight
    return out


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to unit standard deviation.

    Wide filters are the slow part of a photo, so broad noise is made on a coarse grid (about
    three cells per sigma) and resized: the result is equally smooth at a fraction of the cost.
    """
    from scipy.ndimage import gaussian_filter

    step = max(1, int(sigma / 3.0))
    coarse = (max(2, -(-shape[0] // step) + 1), max(2, -(-shape[1] // step) + 1))
    field = gaussian_filter(rng.standard_normal(coarse, dtype=np.float32), sigma / step, mode="reflect")
    if step > 1:
        field = _upsample_bilinear(field, (coarse[0] * step, coarse[1] * step))[: shape[0], : shape[1]]
    else:
        field = field[: shape[0], : shape[1]]
    field = field - np.float32(field.mean())
    return field / np.float32(field.std() + 1e-8)


def _place_lesions(
    rng: np.random.Generator, radii: np.ndarray, shape: tuple[int, int], scale: float
) -> np.ndarray:
    """Centres ``(N, 2)`` (y, x) with centre distances >= ``separation * (r_i + r_j)``.

    Candidates come from clusters in some photos and uniformly in others. When a lesion finds no
    room after a few batches of candidates the separation relaxes, so a crowded small photo still
    receives exactly N lesions (a little closer together).
    """
    height, width = shape
    n = len(radii)
    centres = np.zeros((n, 2), dtype=np.float64)
    if n == 0:
        return centres
    clustered = rng.random() < 0.45
    n_clusters = int(rng.integers(1, 5))
    cluster_centres = np.column_stack(
        [rng.uniform(0.15, 0.85, n_clusters) * height, rng.uniform(0.15, 0.85, n_clusters) * width]
    )
    cluster_spread = rng.uniform(0.07, 0.18) * min(height, width)
    separation = 1.25
    batch = 48
    for i in range(n):
        margin = radii[i] + 1.0
        placed = False
        while not placed:
            for _attempt in range(6):
                if clustered:
                    which = rng.integers(0, n_clusters, batch)
                    candidates = cluster_centres[which] + rng.normal(0.0, cluster_spread, (batch, 2))
                    # a share of lesions still lands anywhere, as on real skin
                    loose = rng.random(batch) < 0.3
                    candidates[loose] = rng.random((int(loose.sum()), 2)) * (height, width)
                else:
                    candidates = rng.random((batch, 2)) * (height, width)
                inside = (
                    (candidates[:, 0] >= margin)
                    & (candidates[:, 0] <= height - 1 - margin)
                    & (candidates[:, 1] >= margin)
                    & (candidates[:, 1] <= width - 1 - margin)
                )
                if i > 0:
                    gaps = np.linalg.norm(candidates[:, None, :] - centres[None, :i, :], axis=2)
                    needed = separation * (radii[None, :i] + radii[i]) + 1.0 * scale
                    free = np.all(gaps >= needed, axis=1)
                else:
                    free = np.ones(batch, dtype=bool)
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


def _hair_alpha(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Opacity ``(H, W)`` of a few curved hairs (quadratic Bezier strokes)."""
    from scipy.ndimage import gaussian_filter

    height, width = shape
    alpha = np.zeros(shape, dtype=np.float32)
    n_hairs = int(rng.integers(1, 16))
    size = min(height, width)
    for _ in range(n_hairs):
        start = rng.random(2) * (height, width)
        direction = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(0.12, 0.6) * size
        end = start + length * np.array([np.sin(direction), np.cos(direction)])
        bend = (start + end) / 2 + rng.normal(0, 0.18 * length, 2)
        t = np.linspace(0.0, 1.0, max(8, int(length * 2.5)))[:, None]
        points = (1 - t) ** 2 * start + 2 * (1 - t) * t * bend + t**2 * end
        rows = np.rint(points[:, 0]).astype(np.int64)
        cols = np.rint(points[:, 1]).astype(np.int64)
        keep = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        # hairs taper: draw the stroke darker near its root
        strength = np.linspace(1.0, 0.55, len(t))[keep]
        np.maximum.at(alpha, (rows[keep], cols[keep]), strength.astype(np.float32))
    thickness = rng.uniform(0.45, 0.9) * max(scale, 0.5)
    alpha = gaussian_filter(alpha, thickness) * np.float32(math.sqrt(2 * math.pi) * thickness * 1.1)
    return np.clip(alpha, 0.0, 1.0) * np.float32(rng.uniform(0.55, 0.9))


def synth_skin_scene(
    n_lesions: int, *, rng: np.random.Generator, size: int | tuple[int, int] = (256, 256)
) -> SkinScene:
    """Draw one synthetic skin photo with exactly ``n_lesions`` acne lesions.

    Parameters
    ----------
    n_lesions : int
        Number of lesions (papules, pustules, nodules) to draw, >= 0.
    rng : numpy.random.Generator
        The only source of randomness: the same generator state gives the same photo.
    size : int or (H, W)
        Photo size in pixels (at least 16 x 16).

    Returns
    -------
    SkinScene
        ``image`` (H, W, 3) uint8 RGB and ``lesions`` (N, 4) float64 (y, x, radius, kind).
    """
    from scipy.ndimage import gaussian_filter

    if isinstance(n_lesions, bool) or not isinstance(n_lesions, (int, np.integer)) or n_lesions < 0:
        raise InputError(expected("n_lesions as an integer >= 0", repr(n_lesions)))
    shape = _as_size(size)
    height, width = shape
    n = int(n_lesions)
    scale = min(height, width) / _REFERENCE_SIZE
    # Below 1 px a lesion vanishes; keep small photos countable by not shrinking lesions too far.
    lesion_scale = max(scale, 0.45)

    # --- skin: tone, colour cast, texture -------------------------------------------------------
    darkness = rng.beta(2.0, 2.6) * (len(_SKIN_TONES) - 1)
    low = int(min(math.floor(darkness), len(_SKIN_TONES) - 2))
    tone = _SKIN_TONES[low] + (darkness - low) * (_SKIN_TONES[low + 1] - _SKIN_TONES[low])
    tone = tone * rng.uniform(0.96, 1.04, 3).astype(np.float32)  # red / yellow / olive casts
    skin = np.broadcast_to(tone, (height, width, 3)).astype(np.float32)

    blotches = _smooth_noise(rng, shape, 18.0 * scale + 1.0)
    grain = _smooth_noise(rng, shape, 2.5 * scale + 0.5)
    # zero crossings of a mid-scale field form a net of fine creases, like the skin's surface lines
    creases = np.exp(-((_smooth_noise(rng, shape, 3.5 * lesion_scale + 0.5) / np.float32(0.16)) ** 2))
    brightness = 1.0 + 0.035 * blotches + 0.02 * grain - np.float32(rng.uniform(0.02, 0.07)) * creases
    skin *= brightness[..., None]

    haemoglobin = np.zeros(shape, dtype=np.float32)
    deep_blood = np.zeros(shape, dtype=np.float32)
    melanin = np.zeros(shape, dtype=np.float32)
    height_map = np.zeros(shape, dtype=np.float32)
    pus_alpha = np.zeros(shape, dtype=np.float32)
    gloss = np.zeros(shape, dtype=np.float32)

    # diffuse background redness (flushing, faded marks) that is not a lesion
    haemoglobin += np.float32(rng.uniform(0.0, 0.1)) * np.clip(
        _smooth_noise(rng, shape, 14.0 * scale + 1.0) + 0.5, 0.0, None
    )

    # pores: many tiny dark pits; their density varies with the body site
    n_pores = int(rng.uniform(0.002, 0.007) * height * width)
    pores = np.zeros(shape, dtype=np.float32)
    pores[rng.integers(0, height, n_pores), rng.integers(0, width, n_pores)] = 1.0
    pores = gaussian_filter(pores, 0.6 * lesion_scale + 0.2)
    pores /= np.float32(pores.max() + 1e-8)
    pore_depth = np.float32(rng.uniform(0.05, 0.18))

    # --- lesions ----------------------------------------------------------------------------------
    kind_probs = rng.dirichlet([5.0, 3.0, 1.5])
    kinds = rng.choice(3, size=n, p=kind_probs)
    radius_range = np.array([[2.5, 5.5], [3.0, 6.0], [6.0, 11.0]])
    radii = rng.uniform(radius_range[kinds, 0], radius_range[kinds, 1]) * lesion_scale
    centres = _place_lesions(rng, radii, shape, lesion_scale)
    light_angle = rng.uniform(0, 2 * np.pi)
    light = np.array([np.sin(light_angle), np.cos(light_angle)])
    image_redness = rng.uniform(0.45, 0.9)  # inflamed vs quiet acne in this photo

    for (cy, cx), radius, kind in zip(centres, radii, kinds):
        elongation = rng.uniform(1.0, 1.35)
        angle = rng.uniform(0, np.pi)
        sy, sx = radius / math.sqrt(elongation), radius * math.sqrt(elongation)
        strength = image_redness * rng.uniform(0.7, 1.3)
        if kind == 0:  # papule
            _stamp(haemoglobin, cy, cx, 0.7 * sy, 0.7 * sx, angle, 0.9 * strength)
            # older papules turn duskier
            _stamp(deep_blood, cy, cx, 0.5 * sy, 0.5 * sx, angle, rng.uniform(0.0, 0.35) * strength)
            _stamp(haemoglobin, cy, cx, 1.5 * sy, 1.5 * sx, angle, 0.2 * strength)
            _stamp(height_map, cy, cx, 0.7 * sy, 0.7 * sx, angle, rng.uniform(0.5, 1.1) * radius)
        elif kind == 1:  # pustule: red ring, yellow-white cap
            _stamp(haemoglobin, cy, cx, 0.8 * sy, 0.8 * sx, angle, 1.05 * strength, sharpness=1.1)
            _stamp(haemoglobin, cy, cx, 1.6 * sy, 1.6 * sx, angle, 0.22 * strength)
            cap = rng.uniform(0.35, 0.55)
            _stamp(pus_alpha, cy, cx, cap * sy, cap * sx, angle, rng.uniform(0.5, 0.9), sharpness=1.6)
            _stamp(height_map, cy, cx, 0.65 * sy, 0.65 * sx, angle, rng.uniform(0.7, 1.2) * radius)
        else:  # nodule: large, deep, diffuse
            _stamp(deep_blood, cy, cx, 0.55 * sy, 0.55 * sx, angle, 0.7 * strength)
            _stamp(haemoglobin, cy, cx, 0.95 * sy, 0.95 * sx, angle, 0.5 * strength)
            _stamp(height_map, cy, cx, 0.75 * sy, 0.75 * sx, angle, rng.uniform(0.3, 0.6) * radius)
        if kind != 2 and rng.random() < 0.2:
            # a wet glint on the lit flank of a raised lesion
            offset = -0.35 * radius * light
            _stamp(gloss, cy + offset[0], cx + offset[1], 0.25 * radius, 0.3 * radius, angle, rng.uniform(0.3, 0.6))

    # --- distractors: freckles, moles, glints -----------------------------------------------------
    if rng.random() < 0.55:
        n_freckles = int(rng.integers(5, 70))
        spot_centre = rng.random(2) * (height, width)
        spread = rng.uniform(0.2, 0.6) * min(height, width)
        for _ in range(n_freckles):
            cy, cx = spot_centre + rng.normal(0, spread, 2)
            r = rng.uniform(0.8, 2.3) * lesion_scale
            _stamp(melanin, cy, cx, r, r * rng.uniform(0.8, 1.3), rng.uniform(0, np.pi), rng.uniform(0.12, 0.4))
    for _ in range(int(rng.poisson(0.7))):
        cy, cx = rng.random(2) * (height, width)
        r = rng.uniform(1.8, 4.5) * lesion_scale
        _stamp(melanin, cy, cx, r, r * rng.uniform(0.9, 1.2), rng.uniform(0, np.pi), rng.uniform(0.9, 1.8), sharpness=2.0)
        _stamp(height_map, cy, cx, r, r, 0.0, rng.uniform(0.0, 0.5) * r)
    # flat brown-red marks left by healed lesions: no longer counted as lesions
    for _ in range(int(rng.poisson(rng.uniform(0.0, 6.0)))):
        cy, cx = rng.random(2) * (height, width)
        r = rng.uniform(2.5, 6.0) * lesion_scale
        angle = rng.uniform(0, np.pi)
        _stamp(melanin, cy, cx, r, r * rng.uniform(1.0, 1.5), angle, rng.uniform(0.1, 0.3), sharpness=1.5)
        _stamp(haemoglobin, cy, cx, r, r * rng.uniform(1.0, 1.5), angle, rng.uniform(0.05, 0.15), sharpness=1.5)
    oily = rng.uniform(0.0, 1.0)
    for _ in range(int(rng.poisson(8 * oily * max(scale, 0.25) ** 2))):
        cy, cx = rng.random(2) * (height, width)
        r = rng.uniform(1.5, 4.0) * lesion_scale
        _stamp(gloss, cy, cx, r * 0.5, r * 1.5, rng.uniform(0, np.pi), rng.uniform(0.1, 0.35))
    gloss += np.float32(0.12 * oily) * np.clip(_smooth_noise(rng, shape, 25.0 * scale + 1.0) - 1.0, 0.0, None)

    # --- compose ---------------------------------------------------------------------------------
    density = (
        haemoglobin[..., None] * _HAEMOGLOBIN
        + deep_blood[..., None] * _DEEP_BLOOD
        + melanin[..., None] * _MELANIN
    )
    photo = skin * np.exp(-density) * (1.0 - pore_depth * pores)[..., None]
    pus_colour = np.array([0.95, 0.87, 0.6], dtype=np.float32) * rng.uniform(0.9, 1.02, 3).astype(np.float32)
    pus = np.clip(pus_alpha, 0.0, 1.0)[..., None]
    photo = photo * (1.0 - pus) + pus_colour * pus

    # raised lesions catch the light on one side and shade the other
    slope_y, slope_x = np.gradient(gaussian_filter(height_map, 0.6))
    shading = 1.0 + 0.25 * (slope_y * np.float32(-light[0]) + slope_x * np.float32(-light[1]))
    photo *= np.clip(shading, 0.6, 1.4)[..., None]

    if rng.random() < 0.6:
        hair = _hair_alpha(rng, shape, scale)[..., None]
        hair_colour = np.float32(rng.uniform(0.04, 0.3)) * tone / tone.max()
        photo = photo * (1.0 - hair) + hair_colour * hair
    glint = np.clip(gloss, 0.0, 0.85)[..., None]
    photo = photo * (1.0 - glint) + np.float32(1.0) * glint

    yy = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    xx = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    gradient_angle = rng.uniform(0, 2 * np.pi)
    lighting = (
        rng.uniform(0.82, 1.08)
        * (1.0 + rng.uniform(0.0, 0.22) * (xx * math.cos(gradient_angle) + yy * math.sin(gradient_angle)))
        * (1.0 - rng.uniform(0.0, 0.3) * (xx * xx + yy * yy) / 2.0)
    )
    white_balance = rng.uniform(0.95, 1.05, 3).astype(np.float32)
    photo *= lighting[..., None] * white_balance

    blur = rng.uniform(0.3, 0.8) * max(scale, 0.5)
    photo = gaussian_filter(photo, (blur, blur, 0.0))
    photo += np.float32(rng.uniform(0.004, 0.018)) * rng.standard_normal(photo.shape, dtype=np.float32)
    image = np.clip(np.rint(photo * 255.0), 0, 255).astype(np.uint8)
    lesions = np.column_stack([centres, radii, kinds.astype(np.float64)]) if n else np.zeros((0, 4))
    return SkinScene(image=image, lesions=lesions)


def synth_skin_photo(
    n_lesions: int, *, rng: np.random.Generator, size: int | tuple[int, int] = (256, 256)
) -> np.ndarray:
    """A synthetic skin photo with exactly ``n_lesions`` acne lesions.

    Returns
    -------
    image : (H, W, 3) ndarray of uint8
        RGB. See ``synth_skin_scene`` for the lesion positions.
    """
    return synth_skin_scene(n_lesions, rng=rng, size=size).image


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(expected(f"{name} as an integer >= {minimum}", repr(value)))
    return int(value)


def grade_count_ranges() -> list[tuple[int, int]]:
    """The inclusive lesion-count range of each Hayashi grade: ``[(1, 5), (6, 20), (21, 50), (51, 65)]``."""
    lows = (1, *(upper + 1 for upper in HAYASHI.upper))
    highs = (*HAYASHI.upper, N_COUNT_BINS)
    return list(zip(lows, highs))


def draw_lesion_counts(n: int, *, rng: np.random.Generator) -> np.ndarray:
    """Lesion counts for ``n`` photos: grades dealt in equal shares, counts uniform within a grade.

    Returns
    -------
    counts : (n,) ndarray of int64
        Values in 1..65; the Hayashi grades of the counts differ in frequency by at most one,
        so every grade appears once ``n >= 4``.
    """
    n = _check_int("n", n, 0)
    grades = rng.permutation(np.arange(n) % N_GRADES)
    ranges = np.array(grade_count_ranges(), dtype=np.int64)
    return rng.integers(ranges[grades, 0], ranges[grades, 1] + 1).astype(np.int64)


def assign_folds(grades: np.ndarray, *, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Stratified folds: the images of each grade, shuffled, dealt round-robin over the folds.

    Parameters
    ----------
    grades : (N,) ndarray of int
    folds : int
        Number of folds, >= 2.

    Returns
    -------
    fold_of_image : (N,) ndarray of int64
        Fold 0..folds-1 whose test split holds the image. Each grade is spread over the folds
        within one image, and so is the total (each grade starts where the last one stopped).
    """
    grades = np.asarray(grades)
    fold_of_image = np.zeros(len(grades), dtype=np.int64)
    start = 0
    for grade in np.unique(grades):
        members = rng.permutation(np.flatnonzero(grades == grade))
        fold_of_image[members] = (start + np.arange(len(members))) % folds
        start = (start + len(members)) % folds
    return fold_of_image


def _write_jpeg(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    with atomic_path(path) as temporary:
        # 4:4:4 (subsampling=0): halving the chroma resolution would wash out the smallest lesions
        Image.fromarray(image).save(temporary, format="JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=False)
    return path


def write_synthetic_dataset(
    out_dir: Path | str, *, n: int, seed: int, size: int = 256, folds: int = 5
) -> list[Path]:
    """Write ``n`` synthetic photos and ``folds`` stratified splits in the ACNE04 layout.

    Writes ``out_dir/JPEGImages/levle{grade}_{i}.jpg`` (i = 0..n-1) and, for k = 0..folds-1,
    ``NNEW_test_k.txt`` (the images of fold k) and ``NNEW_trainval_k.txt`` (all others), lines
    ``"filename  grade  count"`` with the Hayashi grade of the true count. Photo i depends only on
    ``seed`` and ``i`` (and its count), so the same seed gives byte-identical files.

    Returns
    -------
    paths : list of Path
        The image folder, then ``NNEW_trainval_k.txt`` and ``NNEW_test_k.txt`` for each k.

    Raises
    ------
    InputError
        ``n < folds``, ``folds < 2``, ``size < 16`` or a negative seed.
    OutputError
        ``out_dir`` is a file, or ``out_dir/JPEGImages/`` already holds files (never mixed
        with an earlier data set).
    """
    folds = _check_int("folds", folds, 2)
    n = _check_int("n (every fold needs a test image)", n, folds)
    seed = _check_int("seed", seed, 0)
    size = _check_int("size", size, 16)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(expected("an output folder", f"'{out_dir}' which is a file"))
    images_dir = out_dir / IMAGES_DIR
    if images_dir.exists():
        if not images_dir.is_dir():
            raise OutputError(expected(f"'{IMAGES_DIR}' to be a folder", f"a file '{images_dir}'"))
        present = sum(1 for _ in images_dir.iterdir())
        if present:
            raise OutputError(expected(f"an output folder whose '{IMAGES_DIR}/' is empty or absent", f"'{images_dir}' holding {present} files"))

    plan_seed, photos_seed = np.random.SeedSequence(seed).spawn(2)
    plan_rng = np.random.default_rng(plan_seed)
    counts = draw_lesion_counts(n, rng=plan_rng)
    grades = np.array([grade_of_count(int(count)) for count in counts], dtype=np.int64)
    fold_of_image = assign_folds(grades, folds=folds, rng=plan_rng)

    images_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    photo_seeds = photos_seed.spawn(n)
    for i in track(range(n), description="synthetic photos"):
        photo = synth_skin_photo(int(counts[i]), rng=np.random.default_rng(photo_seeds[i]), size=(size, size))
        filename = f"levle{grades[i]}_{i}.jpg"
        _write_jpeg(images_dir / filename, photo)
        entries.append(SplitEntry(filename=filename, grade=int(grades[i]), count=int(counts[i])))

    written: list[Path] = [images_dir]
    for fold in range(folds):
        test = [entry for entry, home in zip(entries, fold_of_image) if home == fold]
        trainval = [entry for entry, home in zip(entries, fold_of_image) if home != fold]
        written.append(write_split_file(split_file_path(out_dir, fold, "trainval"), trainval))
        written.append(write_split_file(split_file_path(out_dir, fold, "test"), test))
    return written

"""Logits -> probabilities, in one place for every pipeline.

Networks and predictors return logits; a weights file's ``output`` entry (see
:mod:`medimg.common.models`) says what they are, and :func:`activate` applies it:

    {"activation": "sigmoid"}                     one array of independent channel logits
    {"activation": "softmax"}                     one array, classes along axis 1
    {"heads": [{"name": ..., "activation": ...}]} a tuple of arrays, one per head
"""

from __future__ import annotations

import numpy as np

from medimg.common.errors import ModelError, expected

ACTIVATIONS = ("sigmoid", "softmax", "identity")


def _apply(logits: np.ndarray, activation: str, in_place: bool = False) -> np.ndarray:
    from scipy.special import expit, softmax

    logits = np.asarray(logits, dtype=np.float32)
    if activation == "sigmoid":
        return expit(logits, out=logits) if in_place else expit(logits).astype(np.float32, copy=False)
    if activation == "softmax":
        return softmax(logits, axis=1).astype(np.float32, copy=False)
    if activation == "identity":
        return logits
    raise ModelError(expected(f"an output activation among {', '.join(ACTIVATIONS)}", repr(activation)))


def activate(logits, output: dict, *, in_place: bool = False):
    """Probabilities from logits as ``output`` describes them.

    Parameters
    ----------
    logits : ndarray of float, (B, C, ...) ; or a tuple of such arrays for a multi-head ``output``
    output : the ``output`` entry of the weights header
    in_place : overwrite a float32 ``logits`` array with its sigmoid (a volume-sized array is not
        copied); other activations always return new arrays

    Returns
    -------
    probabilities : float32, same shape(s) as ``logits``
    """
    heads = output.get("heads")
    if heads is None:
        return _apply(logits, output.get("activation", "sigmoid"), in_place)
    if not isinstance(logits, (tuple, list)) or len(logits) != len(heads):
        got = f"{len(logits)} outputs" if isinstance(logits, (tuple, list)) else "one array"
        raise ModelError(expected(f"{len(heads)} network outputs ({', '.join(h['name'] for h in heads)})", got))
    return tuple(_apply(values, head.get("activation", "identity")) for values, head in zip(logits, heads))

"""Acne grading from skin photos (seed 001; SPEC section 2): lesion count and severity grade.

``medimg acne grade img.jpg`` runs a network with two heads, a 65-bin lesion-count distribution
(counts 1..65) and a 4-grade distribution (mild, moderate, severe, very severe), trained by
label-distribution learning on the ACNE04 layout (or its synthetic stand-in from ``synth``).

Modules, in import order (``cli -> pipeline/evaluate/train -> stages/models -> common``)::

    labels      count bins, grades, grading criteria (Hayashi default), genLD, cou2cls
    dataset     ACNE04 split files NNEW_{trainval,test}_k.txt and JPEGImages/
    transforms  the report's test and training transforms (ACNE04 mean/std)
    scores      Precision, SE, SP, YI, MAE, RMSE, AVE_ACC tables
    skin_family synthetic skin: ranges (SkinFamily) -> drawn parameters (SkinParams) -> render
    synth       synthetic photos with known lesion counts, in the ACNE04 layout (params/ beside them)
    resnet      the CNN backbone (BasicBlock stages)
    vit         the transformer backbone (multi-scale patch embedding with channel attention)
    models      resnet, vit, fusion assembled with their two heads (registry: build_model)
    losses      the LDL KL losses; complexity: parameters and MACs
    inference   which network (common LazyModel), photo -> network input, logits -> both distributions
    pipeline    photos (files, folders, globs) -> per-image records
    train       resumable LDL training on one fold
    evaluate    the report's table on one fold's test split
    cli         ``medimg acne grade|synth|train|evaluate|model-info``
"""

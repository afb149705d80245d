"""Mandible segmentation in head CT (seed 002, SPEC section 3): ``medimg mandible ...``.

Main job: ``medimg mandible segment dicom_dir/`` -> mask.nii.gz, mandible.stl, overlay.png,
report.json (and seg.dcm on request). Modules, in pipeline order:

* :mod:`~medimg.mandible.preprocess` -- CT window, resize to the network input, back to the CT grid
* :mod:`~medimg.mandible.models` -- U-Net variants (ResNet-50 encoder, Up-CBAM decoder) of the paper's ablation,
  registered in :mod:`medimg.common.models`
* :mod:`~medimg.mandible.inference` -- the lazily loaded network (common ``LazyModel``), slice-wise
  probabilities of a volume through the common tiler
* :mod:`~medimg.mandible.postprocess` -- threshold, largest component, stored affines, mesh writing
* :mod:`~medimg.mandible.mesh`, :mod:`~medimg.mandible.overlay`, :mod:`~medimg.mandible.seg_export` -- outputs
* :mod:`~medimg.mandible.output_folders` -- output names and folders
* :mod:`~medimg.mandible.stages` -- the stage commands (volume, infer, mask, mesh, overlay) through files
* :mod:`~medimg.mandible.pipeline` -- ``segment``: all of the above over one or many series
* :mod:`~medimg.mandible.phantom` and ``phantom_*`` -- the head-CT phantom family (ranges -> parameters -> render)
* :mod:`~medimg.mandible.synth` -- synthetic head CT written as a DICOM series, with its true mask and parameters
* :mod:`~medimg.mandible.masks`, :mod:`~medimg.mandible.train` -- training data (NIfTI, PNG, Labelme) and training
* :mod:`~medimg.mandible.losses`, :mod:`~medimg.mandible.encoder_weights` -- focal loss, transfer learning
* :mod:`~medimg.mandible.evaluate`, :mod:`~medimg.mandible.complexity` -- the paper's metrics, model size
"""

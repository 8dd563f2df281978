"""Training and evaluation tooling for the learned detectors (needs torch; not used at run time).

Modules: :mod:`.data` (manifests, source-grouped splits), :mod:`.media_io` (decoding and the
evaluation conditions), :mod:`.metrics` (AUC, TPR at fixed FPR), :mod:`.backbone` (frozen
MobileNetV2 trunk + probe, ONNX export), :mod:`.backbone_effl0` (the same for the shipped
EfficientNet-Lite0 trunk), :mod:`.features` (cached feature extraction),
:mod:`.probe` (logistic probes) and :mod:`.pipeline` (train / evaluate end to end).
"""

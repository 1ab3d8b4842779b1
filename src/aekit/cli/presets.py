"""Named starting points for ``aekit train --preset`` and ``aekit demo``: estimator
parameters, each overridden by any flag the user gives."""

# the book's stacked autoencoder (Géron ch. 15): tied 784-300-150-300-784, ELU, L2 5e-4, Adam 0.01
_BOOK = dict(hidden_layer_sizes=(300, 150), activation="elu", tied=True, l2=5e-4, learning_rate=0.01, batch_size=150)
_DENOISING_LAYERWISE = dict(corruption="gaussian", corruption_level=0.1, training="layerwise")

PRESETS = {
    "book": dict(_BOOK, epochs=5),
    # the book's layer-wise case (ch. 15, "Training One Autoencoder at a Time"): untied, two
    # phases of 4 epochs, one Adam whose step count runs on across the phases as in TF1
    "book-layerwise": dict(
        _BOOK, tied=False, l2=1e-4, training="layerwise", layerwise_epochs=(4, 4), layerwise_step_count="shared"
    ),
    # small and quick, for the 64-pixel digits: what `aekit demo` trains
    "demo": dict(
        _BOOK,
        **_DENOISING_LAYERWISE,
        hidden_layer_sizes=(48, 24),
        l2=1e-4,
        learning_rate=0.005,
        batch_size=32,
        layerwise_epochs=(40, 40),
        fine_tune_epochs=60,
    ),
    # what `aekit demo --dataset mnist` (or any 28x28 set) trains: the book's model, denoising, layer-wise
    "demo-large": dict(_BOOK, **_DENOISING_LAYERWISE, layerwise_epochs=(2, 2), fine_tune_epochs=2),
}

# `aekit demo --quick`: a few epochs only, for smoke tests (small inputs, then 28x28 ones)
QUICK = {
    "demo": dict(layerwise_epochs=(2, 2), fine_tune_epochs=2),
    "demo-large": dict(layerwise_epochs=(1, 1), fine_tune_epochs=1),
}

"""Save and load fitted estimators: a JSON config beside safetensors weights, never a pickle.

A model directory holds two files:

``config.json``
    ``{"format": "aekit-model", "format_version": 2, "aekit_version": ..., "estimator": class
    name, "params": get_params(deep=False), "family": the module's family (a key of
    :data:`aekit.nn.FAMILIES`), "module": the module's config, "fitted": the learned
    attributes other than the module}`` (plus ``"notes"`` when something could not be saved
    as it was, e.g. a ``RandomState``).
``model.safetensors``
    The module's ``state_dict`` (CPU, contiguous). Tied decoders own no weight, so a tied
    model stores only the encoder's weights and biases and the decoders' biases.

Loading reads JSON and safetensors only, so opening a model from an untrusted source cannot
run code; it checks the weight file's names and shapes against the configuration before it
allocates the module, and reads directories written by older versions of aekit
(:mod:`aekit.io.compat`). Writing goes through :func:`aekit.files.atomic_directory`: a failed
save never leaves a half-written model or loses the previous one.
"""

from ..files import atomic_directory
from .format import CONFIG_FILE, FORMAT, FORMAT_VERSION, WEIGHTS_FILE, ModelFileError
from .reading import load
from .writing import save

__all__ = [
    "CONFIG_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "ModelFileError",
    "WEIGHTS_FILE",
    "atomic_directory",
    "load",
    "save",
]

"""Known-harmless library warnings, filtered where a bundle run can filter them, each with the reason it is harmless.

Two kinds of noise reach a bundle run's output:

- log records of library loggers: their levels are set in the bundles' ``configs/logging.conf`` (MONAI applies it
  with ``logging.config.fileConfig`` before the configs are parsed); the list and the reasons are in
  ``bundles/README.md`` ("Logs");
- Python warnings (``warnings.warn``): ``logging.conf`` cannot filter them by message, so the configs call
  :func:`quiet_run` first thing in ``initialize`` (before data are converted, loaded or cached), whose
  :func:`quiet_known_warnings` adds one ``warnings.filterwarnings("ignore", ...)`` per entry of
  :data:`KNOWN_HARMLESS_WARNINGS`.

MONAI's config-trust warning ("parsing config_file ...: any ``_target_`` ...") is not filtered: ``monai.bundle run``
emits it before it reads any file of the bundle, so nothing in a bundle can filter it, and it is a security notice
(the configs run code). Set ``PYTHONWARNINGS="ignore:parsing config_file:UserWarning"`` to silence it for bundles you
trust.
"""

from __future__ import annotations

import warnings

__all__ = ["KNOWN_HARMLESS_WARNINGS", "quiet_known_warnings", "quiet_run"]

KNOWN_HARMLESS_WARNINGS: tuple[tuple[str, type[Warning], str, str], ...] = (
    (
        r"NvImgCodecPydicomReader: nvImageCodec decoder plugin did not register successfully",
        UserWarning,
        r"monai\.data\.image_reader",
        "MONAI tries to register the optional GPU DICOM decoder nvImageCodec whenever a LoadImage is built (also for "
        "NIfTI/PNG data) and falls back to pydicom's own decoders, which read the HECKTOR DICOM series correctly",
    ),
)
"""``(message regex, category, module regex, why it is harmless)`` of each filtered Python warning."""


def quiet_known_warnings() -> bool:
    """Ignore the Python warnings of :data:`KNOWN_HARMLESS_WARNINGS` (each once in the filter list).

    The bundles call it first in ``initialize``, through :func:`quiet_run`.

    Returns:
        True (so a config expression evaluates to something printable).
    """
    for message, category, module, _why in KNOWN_HARMLESS_WARNINGS:
        entry = ("ignore", message, category, module)
        if not any(f[0] == "ignore" and getattr(f[1], "pattern", None) == message for f in warnings.filters):
            warnings.filterwarnings(*entry)
    return True


def quiet_run() -> bool:
    """What every bundle config calls first in ``initialize`` (``"$monai_lexu.handlers.quiet_run()"``): ignore the
    known-harmless warnings (:func:`quiet_known_warnings`) and end a Ctrl-C before the engines start with one line
    (:func:`monai_lexu.handlers.interrupt.install_interrupt_hook`).

    Returns:
        True.
    """
    from monai_lexu.handlers.interrupt import install_interrupt_hook

    quiet_known_warnings()
    install_interrupt_hook()
    return True

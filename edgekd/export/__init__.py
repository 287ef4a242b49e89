"""Export stage: one exporter per format (registered in ``edgekd.core.registry.EXPORTERS``) and parity checks.

Exporters are imported lazily through the registry, so importing this package loads no converter.
"""

from edgekd.export.base import Exporter, RuntimeFn, SidecarInfo, get_exporter
from edgekd.export.parity import ParityResult, check_parity, compare_logits
from edgekd.export.sidecar import Sidecar, read_sidecar, sidecar_path

__all__ = [
    "Exporter",
    "ParityResult",
    "RuntimeFn",
    "Sidecar",
    "SidecarInfo",
    "check_parity",
    "compare_logits",
    "get_exporter",
    "read_sidecar",
    "sidecar_path",
]

"""One registry mechanism for exporters, runners, losses and importance criteria.

Entries map a short lower-case name to ``"module:attribute"`` and are imported only when used, so
heavy libraries (tensorflow, openvino, litert) load only for the exporter or runner that needs them.
Built-ins register through the same call third parties use; other packages add entries through the
Python entry-point group ``edgekd.<kind>`` (e.g. ``edgekd.runners``).

Example:
    >>> EXPORTERS.register("onnx", "edgekd.export.onnx_exporter:OnnxExporter")  # doctest: +SKIP
    >>> exporter_cls = EXPORTERS.get("onnx")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from edgekd.core.errors import ConfigError


class Registry:
    """Name → lazily imported object. Registering a name twice is an error."""

    def __init__(self, kind: str, item: str | None = None) -> None:
        self.kind = kind
        self.item = item or kind.removesuffix("s")
        self._targets: dict[str, str] = {}
        self._loaded: dict[str, Any] = {}
        self._entry_points_read = False
        self._plugins: set[str] = set()

    def register(self, name: str, target: str) -> None:
        if not name.islower() or " " in name:
            raise ValueError(f"{self.kind} name '{name}' must be a short lower-case word")
        if name in self._targets:
            raise ValueError(f"{self.kind} '{name}' is registered twice ({self._targets[name]}, {target})")
        self._targets[name] = target

    def _read_entry_points(self) -> None:
        if self._entry_points_read:
            return
        self._entry_points_read = True
        for ep in entry_points(group=f"edgekd.{self.kind}"):
            if ep.name not in self._targets:
                self._targets[ep.name] = ep.value
                self._plugins.add(ep.name)

    def names(self) -> list[str]:
        self._read_entry_points()
        return sorted(self._targets)

    def entries(self) -> list[tuple[str, str, str]]:
        """``(name, "module:attribute", "built-in" | "plugin")`` of every entry, sorted; imports nothing."""
        self._read_entry_points()
        return [(n, self._targets[n], "plugin" if n in self._plugins else "built-in") for n in self.names()]

    def get(self, name: str) -> Any:
        """The registered object; ConfigError naming the known entries if ``name`` is unknown."""
        self._read_entry_points()
        if name not in self._targets:
            raise ConfigError(f"unknown {self.item} '{name}'; known: {', '.join(self.names())}")
        if name not in self._loaded:
            module, _, attr = self._targets[name].partition(":")
            self._loaded[name] = getattr(importlib.import_module(module), attr)
        return self._loaded[name]


EXPORTERS = Registry("exporters", "exporter")
RUNNERS = Registry("runners", "runner")
LOSSES = Registry("losses", "loss")
IMPORTANCES = Registry("importances", "importance criterion")
ALL_REGISTRIES = (EXPORTERS, RUNNERS, LOSSES, IMPORTANCES)

EXPORTERS.register("onnx", "edgekd.export.onnx_exporter:OnnxExporter")
EXPORTERS.register("tflite", "edgekd.export.tflite_exporter:TfliteExporter")
EXPORTERS.register("openvino", "edgekd.export.openvino_exporter:OpenvinoExporter")
EXPORTERS.register("executorch", "edgekd.export.executorch_exporter:ExecutorchExporter")
RUNNERS.register("local", "edgekd.bench.local_runner:LocalRunner")
RUNNERS.register("qemu", "edgekd.bench.qemu_runner:QemuRunner")
RUNNERS.register("ssh", "edgekd.bench.ssh_runner:SshRunner")
RUNNERS.register("adb", "edgekd.bench.adb_runner:AdbRunner")
LOSSES.register("kd", "edgekd.distill.losses.kd_loss:KDLoss")
LOSSES.register("hint", "edgekd.distill.losses.hint_loss:HintLoss")
LOSSES.register("at", "edgekd.distill.losses.at_loss:ATLoss")
LOSSES.register("rkd", "edgekd.distill.losses.rkd_loss:RKDLoss")
LOSSES.register("spkd", "edgekd.distill.losses.spkd_loss:SPKDLoss")
LOSSES.register("multi", "edgekd.distill.losses.multi_teacher:MultiTeacherKDLoss")
IMPORTANCES.register("l1", "edgekd.prune.importance:l1_importance")
IMPORTANCES.register("l2", "edgekd.prune.importance:l2_importance")
IMPORTANCES.register("taylor", "edgekd.prune.importance:taylor_importance")
IMPORTANCES.register("groupnorm", "edgekd.prune.importance:groupnorm_importance")
IMPORTANCES.register("bnscale", "edgekd.prune.importance:bnscale_importance")

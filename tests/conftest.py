import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("NNCF_CI", "1")
os.environ.setdefault("OPENVINO_TELEMETRY_DISABLE", "1")

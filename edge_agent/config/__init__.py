"""The agent's configuration (contract cli.md): one pydantic tree, loaded from YAML.

`base.py` holds the model every section derives from and the shared patterns, `devices.py` the
scanners, printers, display and feedback, `receiving.py` the receipts, `scales.py` the scales, `tree.py` the root and the
loading. Every name is re-exported here: the tree is one, whichever module a section is in.
"""

from edge_agent.config.base import KEY_NAMES, UpdateConfig
from edge_agent.config.devices import (
    AnyScannerConfig,
    BuzzerAction,
    CommandAction,
    DevicePrinterConfig,
    DisplayConfig,
    FeedbackAction,
    FeedbackConfig,
    FilePrinterConfig,
    HidPosScannerConfig,
    HidScannerConfig,
    PrinterConfig,
    ScannerConfig,
    SerialPrinterConfig,
    SerialScannerConfig,
    TcpPrinterConfig,
)
from edge_agent.config.receiving import PrintOnClose, ReceivingConfig, WeightTolerance
from edge_agent.config.scales import HidScaleConfig, ScaleConfig, SerialScaleConfig
from edge_agent.config.tree import (
    AgentConfig,
    DeviceConfig,
    LabelsConfig,
    LogConfig,
    MqttConfig,
    PrintingConfig,
    RemoteConfigConfig,
    RuleConfig,
    StationConfig,
    StorageConfig,
    TlsConfig,
    load_config,
    parse_config,
    problems_of,
    read_yaml,
)

__all__ = [
    "KEY_NAMES",
    "AgentConfig",
    "AnyScannerConfig",
    "BuzzerAction",
    "CommandAction",
    "DeviceConfig",
    "DevicePrinterConfig",
    "DisplayConfig",
    "FeedbackAction",
    "FeedbackConfig",
    "FilePrinterConfig",
    "HidPosScannerConfig",
    "HidScaleConfig",
    "HidScannerConfig",
    "LabelsConfig",
    "LogConfig",
    "MqttConfig",
    "PrintOnClose",
    "PrinterConfig",
    "PrintingConfig",
    "ReceivingConfig",
    "RemoteConfigConfig",
    "RuleConfig",
    "ScaleConfig",
    "ScannerConfig",
    "SerialPrinterConfig",
    "SerialScaleConfig",
    "SerialScannerConfig",
    "StationConfig",
    "StorageConfig",
    "TcpPrinterConfig",
    "TlsConfig",
    "UpdateConfig",
    "WeightTolerance",
    "load_config",
    "parse_config",
    "problems_of",
    "read_yaml",
]

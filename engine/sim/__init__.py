"""A Binance-compatible exchange simulator on loopback (spot, USDⓈ-M futures, or both), driven by the real ccxt
client, with faults on demand (docs/simulator.md).

Never imports textual, nor any other part of the engine: it stands alone (an import-linter contract).
"""

from .auth import ApiKey
from .faults import FaultError
from .server import Simulator

__all__ = ["ApiKey", "FaultError", "Simulator"]

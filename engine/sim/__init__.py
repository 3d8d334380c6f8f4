"""A Binance-spot-compatible exchange simulator on loopback, driven by the real ccxt client, with faults on
demand (docs/simulator.md).

Never imports textual: the engine is headless (STYLE.md, practice 1).
"""

from .auth import ApiKey
from .faults import FaultError
from .server import Simulator

__all__ = ["ApiKey", "FaultError", "Simulator"]

"""A Binance-spot-compatible exchange simulator on loopback, driven by the real ccxt client.

Never imports textual: the engine is headless (STYLE.md, practice 1).
"""

from .server import Simulator

__all__ = ["Simulator"]

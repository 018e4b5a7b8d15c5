"""Emulated cards (faithful models of each card family) and the vpcd bridge that plugs them into pcscd."""

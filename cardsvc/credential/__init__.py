"""Signed card credentials (CWT in COSE_Sign1), QR text codec, key stores, trust bundle, offline verifier."""

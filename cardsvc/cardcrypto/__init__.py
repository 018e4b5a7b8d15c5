"""Sans-I/O card protocol cryptography: AES-CMAC, AN10922, EV2 auth and secure messaging, SUN,
retail MAC and FMCOS line protection, SM4. Pure functions and small state objects; bytes in, bytes out."""

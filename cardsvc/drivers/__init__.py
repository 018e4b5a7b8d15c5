"""Card drivers: one module per card family. Drivers turn status words into domain errors."""

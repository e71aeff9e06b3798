"""The TAO skill folder: its files, action schemas, the spec it builds, the dataset check."""

"""The search space: parameters, their derivation from the schema, user overrides."""

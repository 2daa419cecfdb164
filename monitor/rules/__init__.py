"""Alert rules: YAML files (loader), pure evaluation (engine), sandboxed templates."""

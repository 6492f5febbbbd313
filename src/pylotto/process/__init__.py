"""The running sidecar: runtime (component lifecycle), servers, workers, launcher, hot reload."""

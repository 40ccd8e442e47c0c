"""The rolling-horizon job: read state -> (forecast) -> plan -> persist -> publish set-points."""

"""Stage 2, the pipeline manager: run state, gates and decisions."""
